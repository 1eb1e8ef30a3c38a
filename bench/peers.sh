#!/usr/bin/env bash
# avmae-serve against ONNX Runtime on the same ViT-Large encoder, same machine, same sitting, interleaved
# (ORT, ours, ORT, ours ...) because ORT's own time drifts by more than the margins we compare (see
# bench/peers/README.md). fp32 is compared with ORT's plain graph, int8 with ORT's dynamic int8 quantisation of
# the same graph (`--variant int8`). Prints per-run lines, then per token count and precision the medians, the
# spread (min-max) and the speed ratio ours/ORT = ORT seconds / our seconds (above 1: avmae-serve is faster).
# Usage: bench/peers.sh [RUNS]   (env: THREADS=2, TOKENS="496 1568", PRECISIONS="fp32 int8", PEERS_VENV, VIT_ONNX_DIR)
# Slow: the graph (1.2 GB of weights) is built once; each run then loads a model and times one pass.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
threads="${THREADS:-2}"
venv="${PEERS_VENV:-.venv-peers}"
export VIT_ONNX_DIR="${VIT_ONNX_DIR:-${TMPDIR:-/tmp}/avmae-vit-onnx}"
# The peer script discards runs during which other processes used the CPU; here both sides run in turn
# under the same load instead, so that filter is off unless asked for.
export VIT_FOREIGN_MAX="${VIT_FOREIGN_MAX:-1.01}"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q onnxruntime onnx numpy psutil
swift build -c release --product avmae-serve
bin="$(swift build -c release --show-bin-path)/avmae-serve"
"$venv/bin/python" bench/peers/peer_vit_ort.py --runs 0   # build the graph once (not timed)

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for tokens in ${TOKENS:-496 1568}; do
    case "$tokens" in 496) case_name=audio1 ;; 1568) case_name=video1 ;; *) echo "tokens: 496 or 1568" >&2; exit 2 ;; esac
    for ((i = 1; i <= runs; i++)); do
        for precision in ${PRECISIONS:-fp32 int8}; do
            variant=plain; [ "$precision" = int8 ] && variant=int8
            ort="$("$venv/bin/python" bench/peers/peer_vit_ort.py --variant "$variant" --threads "$threads" --tokens "$tokens" --runs 1 --warmup 1)"
            echo "ort $tokens $precision $ort" | tee -a "$results"
            ours="$("$bin" bench --json --blas-threads "$threads" --runs 1 --cases "$case_name" --precision "$precision" 2>/dev/null)"
            echo "ours $tokens $precision $ours" | tee -a "$results"
        done
    done
done

"$venv/bin/python" - "$results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, tokens, precision, blob = line.split(" ", 3)
    report = json.loads(blob)
    seconds = report["median_s"] if who == "ort" else report["cases"][0]["seconds"]
    runs.setdefault((int(tokens), precision), {}).setdefault(who, []).append(seconds)
    if who == "ours":
        machine = f'{report["cpu"]} (family {report["cpuFamily"]} model {report["cpuModel"]}, {report["isa"]}), ' \
                  f'OpenBLAS core {report["core"]}, {report["threads"]} threads, FMA peak {report["peakGflops"]:.0f} GFLOP/s'
    else:
        peer = f'onnxruntime {report["version"]}'
print(f"\n{machine}; peer {peer}")
print("tokens | precision | ORT median s (min-max) | ours median s (min-max) | speed ratio ours/ORT")
for (tokens, precision), t in sorted(runs.items()):
    o, a = t["ort"], t["ours"]
    print(f"{tokens} | {precision} | {statistics.median(o):.2f} ({min(o):.2f}-{max(o):.2f}) | "
          f"{statistics.median(a):.2f} ({min(a):.2f}-{max(a):.2f}) | {statistics.median(o) / statistics.median(a):.2f}x")
PY
