#!/usr/bin/env bash
# Installs avmae-serve as a systemd service: the release binary, the unit files, the default configuration
# (kept if already there: it is the admin's) and the demo bundle. Idempotent: a second run changes nothing
# that is already in place. Run deploy/setup.sh first to build the binary.
#
#   deploy/install.sh [--root DIR] [--prefix DIR] [--binary PATH] [--dry-run]
#   deploy/install.sh --uninstall [--root DIR] [--prefix DIR] [--dry-run]
#
#   --root DIR     install under DIR instead of / (like DESTDIR; systemctl is not called). Tests use this.
#   --prefix DIR   where the binary goes, DIR/bin (default /usr/local); the unit's ExecStart follows it.
#   --binary PATH  the binary to install (default: .build/release/avmae-serve of this checkout).
#   --dry-run      print what would change, change nothing.
#   --uninstall    stop and remove the service, binary and demo bundle; the config file and other bundles
#                  in /var/lib/avmae-serve/models are kept unless the config is unchanged from the default.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

root="${DESTDIR:-}"
prefix=/usr/local
binary="$here/../.build/release/avmae-serve"
dry_run=false
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
  esac
done
root="${root%/}"

bin_path="$prefix/bin/avmae-serve"
unit_dir=/etc/systemd/system
config_path=/etc/avmae-serve/avmae-serve.env
models_dir=/var/lib/avmae-serve/models
# systemctl only for a real install on a machine where systemd is PID 1 (not in containers or under --root).
use_systemctl=false
[ -z "$root" ] && [ -d /run/systemd/system ] && use_systemctl=true

# Every change goes through here, so --dry-run shows exactly what a real run would do.
run() {
  echo "+ $*"
  $dry_run || "$@"
}

# Installs $1 as $2 (under the root) with mode $3, only when missing or different.
put() {
  local source="$1" target="$root$2" mode="$3"
  if [ -f "$target" ] && cmp -s "$source" "$target"; then
    echo "  unchanged $2"
    return
  fi
  run install -D -m "$mode" "$source" "$target"
}

# The shipped unit names /usr/local/bin; other prefixes get their path substituted.
unit_for_prefix() {
  sed "s|^ExecStart=/usr/local/bin/avmae-serve|ExecStart=$bin_path|" "$here/avmae-serve.service"
}

install_all() {
  [ -x "$binary" ] || { echo "install.sh: no binary at $binary; run deploy/setup.sh first or pass --binary" >&2; exit 1; }
  unit="$(mktemp)"
  trap 'rm -f "$unit"' EXIT
  unit_for_prefix > "$unit"

  put "$binary" "$bin_path" 0755
  put "$unit" "$unit_dir/avmae-serve.service" 0644
  put "$here/avmae-serve.socket" "$unit_dir/avmae-serve.socket" 0644
  if [ -f "$root$config_path" ]; then
    echo "  kept $config_path (yours; the shipped default is deploy/avmae-serve.env)"
  else
    put "$here/avmae-serve.env" "$config_path" 0644
  fi
  if [ -f "$root$models_dir/demo/config.json" ]; then
    echo "  unchanged $models_dir/demo"
  else
    run install -d -m 0755 "$root$models_dir"
    run "$binary" demo-bundle --out "$root$models_dir/demo"
  fi
  if $use_systemctl; then
    run systemctl daemon-reload
    echo "installed. Start with: systemctl enable --now avmae-serve.service   (or avmae-serve.socket)"
  fi
}

uninstall_all() {
  if $use_systemctl; then
    run systemctl disable --now avmae-serve.socket avmae-serve.service || true
  fi
  local path
  for path in "$bin_path" "$unit_dir/avmae-serve.service" "$unit_dir/avmae-serve.socket"; do
    [ -e "$root$path" ] && run rm -f "$root$path"
  done
  if [ -f "$root$config_path" ]; then
    if cmp -s "$here/avmae-serve.env" "$root$config_path"; then
      run rm -f "$root$config_path"
      [ -d "$root/etc/avmae-serve" ] && run rmdir --ignore-fail-on-non-empty "$root/etc/avmae-serve"
    else
      echo "  kept $config_path (edited; remove it by hand)"
    fi
  fi
  [ -d "$root$models_dir/demo" ] && run rm -rf "$root$models_dir/demo"
  # Only empty folders go: other bundles someone put next to the demo stay. Once the service has run,
  # /var/lib/avmae-serve is systemd's symlink into /var/lib/private (DynamicUser=); systemd owns that.
  for path in "$models_dir" /var/lib/avmae-serve; do
    [ -d "$root$path" ] && [ ! -L "$root$path" ] && run rmdir --ignore-fail-on-non-empty "$root$path"
  done
  $use_systemctl && run systemctl daemon-reload
  return 0
}

"${action}_all"
