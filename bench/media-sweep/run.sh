#!/usr/bin/env bash
# The media sweep of issue 11: generate a pairwise covering set of formats (generate.py), decode every file as the
# server does natively with default settings and with AVMAE_GUARD_PAGES=1, then under valgrind memcheck
# (decode_sweep.py), each both whole and window by window as ?stream=true does, and print the counts. Exits 1 on any finding: a crash, a memcheck error, or a file decoded
# or refused against the manifest's expectation.
#   bench/media-sweep/run.sh [OUT_DIR]       default ${TMPDIR:-/tmp}/avmae-media-sweep
# SKIP_MEMCHECK=1 leaves out valgrind; MEMCHECK_JOBS (default: the core count) valgrind processes run at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${TMPDIR:-/tmp}/avmae-media-sweep}"
here=bench/media-sweep

lscpu | grep -E '^(Model name|CPU family|Model):' | tr -s ' '
swift build -c release --product avmae-serve
bin="$(swift build -c release --show-bin-path)/avmae-serve"

python3 "$here/generate.py" "$out"

status=0
python3 "$here/decode_sweep.py" --bin "$bin" "$out" || status=1
python3 "$here/decode_sweep.py" --bin "$bin" --guard-pages "$out" || status=1
# The same files window by window, as ?stream=true decodes them (ClipWindowStream over the file).
python3 "$here/decode_sweep.py" --bin "$bin" --stream "$out" || status=1
python3 "$here/decode_sweep.py" --bin "$bin" --guard-pages --stream "$out" || status=1
if [ "${SKIP_MEMCHECK:-0}" != 1 ]; then
  command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed (deploy/setup.sh installs it)"; exit 1; }
  # Valgrind 3.19 cannot read the DWARF Swift 6.3 writes ("Possibly corrupted debuginfo file"); a stripped copy
  # runs, and FFmpeg's frames keep their names.
  stripped="$(mktemp "${TMPDIR:-/tmp}/avmae-serve.stripped.XXXXXX")"
  trap 'rm -f "$stripped"' EXIT
  strip -o "$stripped" "$bin"
  python3 "$here/decode_sweep.py" --bin "$stripped" --memcheck --jobs "${MEMCHECK_JOBS:-$(nproc)}" "$out" || status=1
  python3 "$here/decode_sweep.py" --bin "$stripped" --memcheck --stream --jobs "${MEMCHECK_JOBS:-$(nproc)}" "$out" || status=1
fi
python3 "$here/decode_sweep.py" --table "$out"
exit $status
