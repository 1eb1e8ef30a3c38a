# Shared by bench/rootfs/*.sh (sourced, not run): where the root file systems live, how they are built, and
# the checks' pass/fail table. Needs root, mmdebstrap and the Debian mirror this machine's apt uses.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Cached root file systems, one per package set; .build-rootfs/ is ignored by git (.build*/).
cache="${ROOTFS_CACHE:-$repo/.build-rootfs}"
container="$repo/deploy/container"
suite=bookworm

die() { echo "rootfs: $*" >&2; exit 1; }
say() { echo "rootfs: $*"; }

# The host's Debian sources (deb822 files signed by the Debian archive key, else sources.list), handed to
# mmdebstrap as they are: the root file system gets the packages and versions this machine's apt sees.
debian_sources() {
  if [ -n "${ROOTFS_SOURCES:-}" ]; then echo "$ROOTFS_SOURCES"; return; fi
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] && grep -q debian-archive-keyring "$file" && echo "$file"
  done
  [ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list && echo /etc/apt/sources.list
  return 0
}

# What debian:12-slim leaves out (its /etc/dpkg/dpkg.cfg.d/docker), so sizes compare with the real image.
slim_excludes=(
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
)

# rootfs NAME EXTRA_PACKAGES...: prints the directory of a Debian 12 root file system made as the image's
# runtime stage is: minbase (what debian:12-slim is) plus EXTRA_PACKAGES, then the Containerfile's own
# prepare-runtime.sh run inside it, which installs runtime-packages.txt and adds the service user. Built once
# per input: the hash of the extra packages and both files names the directory.
rootfs() {
  local name="$1"; shift
  local extra="$*"
  local key="$({ echo "$suite $extra"; cat "$container/runtime-packages.txt" "$container/prepare-runtime.sh"; } | sha256sum | cut -c1-12)"
  local dir="$cache/$name-$key"
  if [ ! -f "$dir/.complete" ]; then
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
    local sources=($(debian_sources))
    [ ${#sources[@]} -gt 0 ] || die "no Debian apt sources found on this machine; set ROOTFS_SOURCES=FILE"
    rm -rf "$dir"
    mkdir -p "$cache"
    say "building the $name root file system in $dir" >&2
    local start=$SECONDS
    mmdebstrap --quiet --variant=minbase ${extra:+--include="${extra// /,}"} "${slim_excludes[@]}" \
      --customize-hook="mkdir -p \"\$1/tmp/runtime\" && cp '$container/runtime-packages.txt' '$container/prepare-runtime.sh' \"\$1/tmp/runtime/\"" \
      --customize-hook='chroot "$1" sh /tmp/runtime/prepare-runtime.sh' \
      --customize-hook='rm -rf "$1/tmp/runtime"' \
      "$suite" "$dir" "${sources[@]}" >&2
    touch "$dir/.complete"
    say "built $name in $((SECONDS - start)) s, $(du -sm --exclude=./proc "$dir" | cut -f1) MB" >&2
  fi
  echo "$dir"
}

# The pass/fail table: check NAME COMMAND... runs COMMAND, records its result and its last output line.
results=()
failures=0
check() {
  local name="$1"; shift
  local output status=0
  output="$("$@" 2>&1)" || status=$?
  local detail="$(echo "$output" | tail -1)"
  if [ $status -eq 0 ]; then
    results+=("PASS | $name | $detail")
  else
    results+=("FAIL | $name | $detail")
    failures=$((failures + 1))
    echo "$output" | sed 's/^/    /' >&2
  fi
  echo "${results[-1]}"
}

print_table() {
  echo
  echo "| result | check | detail |"
  echo "| --- | --- | --- |"
  local row
  for row in "${results[@]}"; do echo "| $row |"; done
  echo
  echo "$(( ${#results[@]} - failures )) passed, $failures failed"
}
