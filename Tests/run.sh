#!/usr/bin/env bash
# The project's whole test suite: Swift tests (unit, golden parity, real server on loopback), then the Python
# tool tests. AVMAE_GOLDEN_DIR (set by .ci/run to ../shared/golden) enables the full-length `tiny` parity check.
set -euo pipefail
cd "$(dirname "$0")/.."
export AVMAE_GOLDEN_DIR="${AVMAE_GOLDEN_DIR:-$(cd .. && pwd)/shared/golden}"
[ -d "$AVMAE_GOLDEN_DIR" ] || unset AVMAE_GOLDEN_DIR
swift build -c release --product avmae-serve
export AVMAE_SERVE_BIN="$(swift build -c release --show-bin-path)/avmae-serve"
swift test -c release
