#!/usr/bin/env bash
# Installs the Debian 12 packages avmae-serve needs and builds the release binary.
# Idempotent; run as root (or with sudo available) on a machine that already has Swift 6 on PATH.
# --packages-only installs the packages and stops (the container image's builder stage builds by itself).
set -euo pipefail
cd "$(dirname "$0")/.."
packages_only=false
[ "${1:-}" = --packages-only ] && packages_only=true

packages=(
  pkg-config
  libopenblas-dev
  libdnnl-dev      # oneDNN 2.6: the int8/bf16 engine (--precision); pulls libdnnl2 and libgomp1
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev ffmpeg
  libsndfile1-dev
  libmicrohttpd-dev
  libseccomp-dev   # the decode workers' system call filter
  python3-venv
  curl
  openssl          # TLSTests make a self-signed certificate with it
  valgrind binutils  # MediaSweepTests and bench/media-sweep run a stripped copy of the decoder under memcheck
  prometheus       # promtool: MetricsLintTests runs `promtool check metrics` on a live daemon's /metrics
  systemd
  chromium chromium-driver  # Tests/browser drives the playground page in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
$packages_only && exit 0

swift build -c release --product avmae-serve
bin="$(swift build -c release --show-bin-path)/avmae-serve"
echo "setup: built $bin"

# The demo bundle lets the server start with nothing downloaded. Its labels are placeholders.
[ -f models/demo/model.safetensors ] || "$bin" demo-bundle --out models/demo
