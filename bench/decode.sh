#!/usr/bin/env bash
# Makes 10 s benchmark clips (not committed: the 720p ones are several MB) and times MediaDecoder on them
# in a release build, next to one ViT-Large audio inference. Usage: bench/decode.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${TMPDIR:-/tmp}/avmae-decode-bench"
mkdir -p "$dir"
ff() { ffmpeg -hide_banner -loglevel error -n "$@" || true; }
video="testsrc2=s=1280x720:r=30"
sound="aevalsrc=0.3*sin(2*PI*440*t)+0.1*sin(2*PI*3000*t):s=48000:c=stereo"
# Phone-like: H.264 High, keyframe every second, AAC 48 kHz stereo.
ff -f lavfi -i "$video" -f lavfi -i "$sound" -t 10 -c:v libx264 -preset medium -pix_fmt yuv420p -g 30 -b:v 6M -c:a aac -b:a 128k "$dir/720p_h264_aac_gop1s.mp4"
# x264's default keyframe interval (250 frames): one keyframe, so no seek helps.
ff -f lavfi -i "$video" -f lavfi -i "$sound" -t 10 -c:v libx264 -preset medium -pix_fmt yuv420p -b:v 6M -c:a aac -b:a 128k "$dir/720p_h264_aac_gop250.mp4"
ff -f lavfi -i "testsrc2=s=1920x1080:r=30" -f lavfi -i "$sound" -t 10 -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 30 -b:v 10M -c:a aac "$dir/1080p_h264_aac_gop1s.mp4"
ff -f lavfi -i "$video" -f lavfi -i "$sound" -t 10 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 3M -c:a libopus "$dir/720p_vp9_opus.webm"
ff -f lavfi -i "$sound" -t 10 -ar 44100 -c:a pcm_s16le "$dir/audio_44k_stereo.wav"
ff -f lavfi -i "$sound" -t 10 -ar 44100 -c:a flac "$dir/audio_44k_stereo.flac"
ff -f lavfi -i "$sound" -t 10 -ar 44100 -c:a libmp3lame -b:a 128k "$dir/audio_44k_stereo.mp3"
ff -f lavfi -i "$sound" -t 10 -c:a libvorbis "$dir/audio_48k_stereo.ogg"
ff -f lavfi -i "$sound" -t 10 -c:a aac -b:a 128k "$dir/audio_48k_stereo.m4a"
ff -f lavfi -i "$sound" -t 10 -ar 16000 -ac 1 -c:a pcm_s16le "$dir/audio_16k_mono.wav"
swift build -c release --product avmae-serve
# audio1 (ViT-Large, 496 tokens) is timed in the same run so decode cost reads as a share of one inference.
"$(swift build -c release --show-bin-path)/avmae-serve" bench --cases audio1 --runs "${1:-9}" --decode "$dir"
