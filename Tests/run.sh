#!/usr/bin/env bash
# The project's whole test suite: Swift tests (unit, golden parity, media, the real server on loopback), the
# HTTP contract, the playground in a browser, reliability, then the Python tool tests (converter, SavedModel
# inspector, models fetch, run --clip against independent references).
# AVMAE_GOLDEN_DIR (default ../shared/golden) enables the full-length `tiny` parity checks; when it is absent they
# say they did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
export AVMAE_GOLDEN_DIR="${AVMAE_GOLDEN_DIR:-$(cd .. && pwd)/shared/golden}"
[ -d "$AVMAE_GOLDEN_DIR" ] || { echo "run.sh: no golden dir at $AVMAE_GOLDEN_DIR; full-length checks will not run"; unset AVMAE_GOLDEN_DIR; }

swift build -c release --product avmae-serve
export AVMAE_SERVE_BIN="$(swift build -c release --show-bin-path)/avmae-serve"
swift test -c release

# Unit files (systemd-analyze verify + security score), Kubernetes manifests (schema), nginx example (nginx -t).
bash deploy/validate.sh

# The HTTP contract: every response of a real daemon checked against openapi.yaml, then a bounded schemathesis run.
python3 -m venv .venv-contract
.venv-contract/bin/pip install -q -r Tests/contract/requirements.txt
.venv-contract/bin/python -m pytest -q Tests/contract
bash Tests/contract/schemathesis.sh 60

# The playground page in headless Chromium: upload, labels, timeline, embeddings download, API key prompt.
python3 -m venv .venv-browser
.venv-browser/bin/pip install -q -r Tests/browser/requirements.txt
.venv-browser/bin/python -m pytest -q -s Tests/browser

# Reliability against the real daemon (~1.5 min): overload, slow clients, SIGKILL + restart, 1000 bad requests,
# decode workers SIGKILLed mid-clip under load.
python3 bench/reliability/reliability.py --bin "$AVMAE_SERVE_BIN"

python3 -m venv .venv-tools
.venv-tools/bin/pip install -q -r tools/requirements.txt
export AVMAE_TF_PYTHON="$(bash tools/setup_tf_venv.sh)"
.venv-tools/bin/python -m pytest tools/tests -q -rs
