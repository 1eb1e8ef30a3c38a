#!/usr/bin/env bash
# What decoding in a sandboxed worker process (decode_isolation=process) adds per request, against decoding in
# the daemon, as a share of the decode itself: a 10 s WAV (audio), and a 10 s 720p H.264 + AAC MP4 with 1 and
# 4 crops. Clips are made here (not committed). Usage: bench/isolation.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${TMPDIR:-/tmp}/avmae-isolation-bench"
mkdir -p "$dir"
ff() { ffmpeg -hide_banner -loglevel error -n "$@" || true; }
sound="aevalsrc=0.3*sin(2*PI*440*t)+0.1*sin(2*PI*3000*t):s=48000:c=stereo"
ff -f lavfi -i "$sound" -t 10 -ar 44100 -c:a pcm_s16le "$dir/audio_44k_stereo_10s.wav"
ff -f lavfi -i "testsrc2=s=1280x720:r=30" -f lavfi -i "$sound" -t 10 -c:v libx264 -preset medium -pix_fmt yuv420p \
   -g 30 -b:v 6M -c:a aac -b:a 128k "$dir/720p_h264_aac_10s.mp4"
swift build -c release --product avmae-serve
lscpu | grep -E "Model name|CPU family|^Model:"
"$(swift build -c release --show-bin-path)/avmae-serve" bench --runs "${1:-15}" --decode-isolation "$dir"
