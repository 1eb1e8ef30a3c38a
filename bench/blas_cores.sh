#!/usr/bin/env bash
# Which OpenBLAS kernel set ("core") is fastest on this CPU: `avmae-serve bench` under each OPENBLAS_CORETYPE,
# interleaved (A, B, C, A, B, C ...) so a noisy neighbour slows all alike. OpenBLASCore.best(for:) in
# Sources/AVMAE/Kernels/OpenBLASCore.swift is set from these numbers; README's Benchmark section has them.
# Usage: bench/blas_cores.sh [ROUNDS] [CORE ...]    (default: 5 rounds of Haswell Zen SkylakeX Cooperlake)
# Prints per core the median GFLOP/s of sgemm on the encoder's big linear shapes, of sgemm on every product
# (attention's per-head ones included), and of the encoder itself (2 layers), for 496 and 1568 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
shift || true
if [ $# -gt 0 ]; then cores=("$@"); else cores=(Haswell Zen SkylakeX Cooperlake); fi
swift build -c release --product avmae-serve
bin="$(swift build -c release --show-bin-path)/avmae-serve"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
    for core in "${cores[@]}"; do
        # AVMAE_ALLOW_SLOW_BLAS: a forced core below the CPU's best is refused otherwise.
        OPENBLAS_CORETYPE="$core" AVMAE_ALLOW_SLOW_BLAS=1 "$bin" bench --json --layers 2 --runs 3 --blas-threads "${THREADS:-2}" \
            --cases audio1 --cases video1 2>/dev/null >> "$results"
        echo "round $r $core done" >&2
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    report = json.loads(line)
    machine = f'{report["cpu"]} (family {report["cpuFamily"]} model {report["cpuModel"]}, {report["isa"]}), {report["threads"]} threads'
    for case in report["cases"]:
        rows.setdefault((report["core"], case["name"]), []).append(
            (case["sgemmLinearGflops"], case["sgemmGflops"], case["gflops"], report["peakGflops"]))
print(machine)
print("core | case | linear-shape sgemm GFLOP/s median (min-max) | all-product sgemm | encoder | FMA peak")
for (core, name), v in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    cols = list(zip(*v))
    f = lambda xs: f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"
    print(f"{core} | {name} | {f(cols[0])} | {f(cols[1])} | {f(cols[2])} | {statistics.median(cols[3]):.0f}")
PY
