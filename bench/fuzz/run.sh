#!/usr/bin/env bash
# Builds a libFuzzer + AddressSanitizer binary over MediaDecoder.decode and runs it.
# Usage: bench/fuzz/run.sh [SECONDS]   (default 300). Crashes land in bench/fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${TMPDIR:-/tmp}/avmae-media-fuzz"
mkdir -p "$out/corpus" bench/fuzz/findings
# Seeds: every fixture under 64 KB (the fuzzer's max input length).
find Tests/MediaTests/Fixtures -type f -size -64k ! -name '*.sh' ! -name '*.md' -exec cp {} "$out/corpus/" \;
swiftc -sanitize=fuzzer,address -O -g -parse-as-library -module-name MediaFuzz \
  -Xcc -fmodule-map-file=Sources/CFFmpeg/module.modulemap -Xcc -fmodule-map-file=Sources/CSndFile/module.modulemap \
  $(pkg-config --cflags-only-I libavformat sndfile | sed 's/-I/-Xcc -I/g') \
  Sources/Media/*.swift bench/fuzz/fuzz_decode.swift -o "$out/fuzz_decode"
# Decoding a 1920x1080 clip legitimately holds a few hundred MB; cap RSS well above that.
"$out/fuzz_decode" "$out/corpus" -max_len=65536 -timeout=20 -rss_limit_mb=3072 -max_total_time="${1:-300}" \
  -artifact_prefix=bench/fuzz/findings/ -print_final_stats=1
