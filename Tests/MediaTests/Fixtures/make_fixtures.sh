#!/usr/bin/env bash
# Regenerates the Media test fixtures with the ffmpeg command line (Debian 12's ffmpeg 5.1).
# Every file stays under 1 MB. Run from anywhere: ./make_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# A 1 kHz sine at amplitude 0.5 (the resampling test checks its peak bin), one tone per channel count.
sine() { # rate channels seconds
  local layout=mono; [ "$2" = 2 ] && layout=stereo
  echo "-f lavfi -i aevalsrc=0.5*sin(2*PI*1000*t):s=$1:c=$layout:d=$3"
}

# Audio: every container, mono and stereo, 8/16/22.05/44.1/48 kHz, 1 s and 25 s.
ff $(sine 8000 1 1)   -c:a pcm_s16le sine_8k_mono_1s.wav
ff $(sine 16000 1 1)  -c:a pcm_s16le sine_16k_mono_1s.wav
ff $(sine 22050 2 1)  -c:a pcm_s16le sine_22k_stereo_1s.wav
ff $(sine 44100 2 1)  -c:a pcm_s16le sine_44k_stereo_1s.wav
ff $(sine 48000 2 1)  -c:a pcm_f32le sine_48k_stereo_1s_f32.wav
ff $(sine 8000 1 25)  -c:a pcm_s16le sine_8k_mono_25s.wav
ff $(sine 44100 2 1)  -c:a flac sine_44k_stereo_1s.flac
ff $(sine 16000 1 25) -c:a flac sine_16k_mono_25s.flac
ff $(sine 44100 2 25) -c:a libmp3lame -b:a 64k sine_44k_stereo_25s.mp3
ff $(sine 22050 1 1)  -c:a libmp3lame -b:a 32k sine_22k_mono_1s.mp3
ff $(sine 22050 1 1) -f lavfi -i "color=c=blue:s=32x32:d=0.04" -frames:v 1 -map 0 -map 1 -c:a libmp3lame -b:a 32k \
   -c:v mjpeg -disposition:v attached_pic -id3v2_version 3 sine_22k_mono_1s_cover_art.mp3
ff $(sine 48000 2 1)  -c:a libvorbis -q:a 2 sine_48k_stereo_1s.ogg
ff $(sine 48000 1 1)  -c:a libopus -b:a 32k sine_48k_mono_1s.opus
ff $(sine 44100 2 1)  -c:a aac -b:a 96k sine_44k_stereo_1s.m4a
ff $(sine 48000 1 1)  -c:a aac -b:a 64k -vn audio_only_48k_mono_1s.mp4

# Video: four vertical colour bars (red, lime, blue, white), 80 px each, 320x240; the crop test knows where
# each lands after the short side becomes 224 (or 256) and the centre crop.
bars="color=c=red:s=80x240:r=25[a];color=c=lime:s=80x240:r=25[b];color=c=blue:s=80x240:r=25[c];color=c=white:s=80x240:r=25[d];[a][b][c][d]hstack=4,format=yuv420p[v]"
x264="-c:v libx264 -preset veryfast -pix_fmt yuv420p"
ff -filter_complex "$bars" $(sine 44100 2 1) -map '[v]' -map 0:a -t 1 $x264 -c:a aac -b:a 64k bars_h264_aac.mp4
ff -filter_complex "$bars" $(sine 44100 2 1) -map '[v]' -map 0:a -t 1 $x264 -c:a aac -b:a 64k bars_h264_aac.mov
ff -filter_complex "$bars" $(sine 48000 2 1) -map '[v]' -map 0:a -t 1 $x264 -c:a libvorbis bars_h264_vorbis.mkv
ff -filter_complex "$bars" $(sine 48000 2 1) -map '[v]' -map 0:a -t 1 -c:v libvpx-vp9 -b:v 200k -deadline realtime -c:a libopus -b:a 32k bars_vp9_opus.webm
ff -filter_complex "$bars" -map '[v]' -t 1 $x264 bars_no_audio.mp4

# A phone-style portrait video: stored landscape 320x240 (top half red, bottom half blue) at 30 fps with a
# display matrix rotated 90 degrees counter-clockwise, so it shows as 240x320 with red on the left and blue on
# the right (what `ffmpeg -i rotated_phone.mp4 out.png` shows). ffmpeg 5.1 writes the matrix only on a remux.
ff -filter_complex "color=c=red:s=320x120:r=30[a];color=c=blue:s=320x120:r=30[b];[a][b]vstack,format=yuv420p[v]" \
   $(sine 48000 1 1) -map '[v]' -map 0:a -t 1 $x264 -c:a aac -b:a 64k unrotated.mp4
ff -i unrotated.mp4 -c copy -metadata:s:v:0 rotate=90 rotated_phone.mp4
rm unrotated.mp4

# A frame counter: frame n has luma 16 + 2n (lossless), 64x64 at 25 fps for 5 s, so the sampling test can
# read back which source frame each model frame came from.
ff -f lavfi -i "nullsrc=s=64x64:r=25,geq=lum='16+2*N':cb=128:cr=128,format=yuv420p" -t 5 -c:v libx264 -qp 0 -pix_fmt yuv420p counter_25fps_5s.mp4

# A 25 s video with sound for window counts and audio/video alignment.
ff -f lavfi -i "testsrc2=s=96x64:r=25" $(sine 16000 1 25) -map 0:v -map 1:a -t 25 $x264 -crf 40 -c:a aac -b:a 24k long_25s.mp4

# A WebM written to a pipe, as browsers' MediaRecorder writes it: no duration and no cues in the header.
ff -filter_complex "$bars" -map '[v]' -t 1 -c:v libvpx-vp9 -b:v 200k -deadline realtime -f webm pipe:1 > no_duration.webm

# Sound that starts 0.5 s after the picture (an empty edit in the MP4), red picture: the waveform must be
# silent for its first half second so that sound and frames share one timeline.
ff -f lavfi -i "color=c=red:s=64x64:r=25" -itsoffset 0.5 -f lavfi -i "aevalsrc=0.5*sin(2*PI*1000*t):s=16000:c=mono:d=1.5" \
   -map 0:v -map 1:a -t 2 $x264 -c:a aac -b:a 32k late_audio.mp4

# Video with its index first (-movflags +faststart, as phones and web encoders write): cut short, its header
# still promises 5 s of pictures, which is how truncation is noticed without sound.
ff -f lavfi -i "testsrc2=s=96x64:r=25" -t 5 $x264 -crf 40 -movflags +faststart faststart_no_audio_5s.mp4

# A 1x1 video (FFV1, since H.264 needs even sizes).
ff -f lavfi -i "color=c=gray:s=2x2:r=25,scale=1:1,format=gray" -t 1 -c:v ffv1 tiny_1x1.mkv



# A one-frame PNG-in-MOV whose sample description and PNG header both declare 16000x16000 (patched after
# encoding a 16x16 frame): the limit must refuse it before any decoder allocates 768 MB.
ff -f lavfi -i "color=c=red:s=16x16" -frames:v 1 -c:v png declared_16000x16000.mov
python3 - <<'PY'
data = bytearray(open("declared_16000x16000.mov", "rb").read())
entry = data.find(b"png ")                       # stsd sample entry: width, height at +28, +30 (uint16 BE)
data[entry + 28:entry + 32] = (16000).to_bytes(2, "big") * 2
header = data.find(b"IHDR")                      # PNG IHDR: width, height (uint32 BE)
data[header + 4:header + 12] = (16000).to_bytes(4, "big") * 2
open("declared_16000x16000.mov", "wb").write(data)
PY
# Shapes that crashed the daemon (issue 11: swscale wrote past a width*3-stride destination, heap corruption):
# testsrc2 as phones and odd encoders write it, kept short and coarse to stay small. Regression fixtures for
# the padded, 64-byte-aligned RGB destination; the test also decodes them with guard pages after every buffer.
ff -f lavfi -i "testsrc2=s=360x640:r=25" -t 0.5 $x264 -crf 35 regress_h264_360x640.mp4
ff -f lavfi -i "testsrc2=s=360x640:r=25" $(sine 44100 2 0.5) -map 0:v -map 1:a -t 0.5 $x264 -crf 35 -c:a aac -b:a 32k unrotated.mp4
ff -i unrotated.mp4 -c copy -metadata:s:v:0 rotate=90 regress_h264_360x640_rotated_audio.mp4
rm unrotated.mp4
ff -f lavfi -i "testsrc2=s=1080x1920:r=30" -t 0.2 $x264 -crf 40 regress_h264_1080x1920.mp4
ff -f lavfi -i "testsrc2=s=361x203:r=25" -t 0.5 -c:v libx264 -preset veryfast -pix_fmt yuv420p -crf 35 regress_h264_361x203.mp4
ff -f lavfi -i "testsrc2=s=200x720:r=25" -t 0.5 -c:v libvpx-vp9 -b:v 100k -deadline realtime regress_vp9_200x720.webm
# Containers people have that were refused before: AVI (MPEG-4 Part 2 + MP3) and MPEG-TS (H.264 + AAC).
ff -filter_complex "$bars" $(sine 44100 2 1) -map '[v]' -map 0:a -t 1 -c:v mpeg4 -q:v 8 -c:a libmp3lame -b:a 32k bars_mpeg4_mp3.avi
ff -filter_complex "$bars" $(sine 48000 2 1) -map '[v]' -map 0:a -t 1 $x264 -c:a aac -b:a 32k bars_h264_aac.ts

# Found by the media sweep under valgrind (bench/media-sweep): Scaler handed sws_scale one destination pointer and
# one stride where it reads four of each, and memcheck flagged its alignment check on our stack. An odd-height
# 4:2:0 MJPEG takes swscale's general path, where that check runs. MediaSweepTests decodes it under memcheck.
ff -f lavfi -i "testsrc2=s=200x18:r=25:d=0.2" -vf "format=rgb24,crop=200:17:0:0,format=yuv420p" -pix_fmt yuv420p \
   -strict -1 -c:v mjpeg -q:v 5 unrotated.mov
ff -i unrotated.mov -c copy -metadata:s:v:0 rotate=90 regress_mjpeg_200x17_rotated.mov
rm unrotated.mov
# Also found under memcheck: swscale's x86 YUV->RGB converters write 8-pixel groups and skip a row's last group when
# the stride cannot hold it; at 18 px wide (a 64-byte row) the last 2 pixels stayed unwritten and CropResize read them.
ff -f lavfi -i "testsrc2=s=18x32:r=25:d=0.2" -pix_fmt yuv420p -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 100k \
   regress_vp9_18x32.webm

ls -l
