#!/usr/bin/env bash
# The shipped unit under a real systemd: a Debian 12 root file system (the container's runtime packages plus
# systemd, built once and cached) boots systemd as PID 1 in its own PID, mount, UTS, IPC and cgroup
# namespaces, on a fresh writable overlay per run. deploy/install.sh installs the binary, both units, the
# env file and a demo bundle into it, unchanged; then each behaviour the unit promises is exercised against
# real requests. Prints a pass/fail table; exits non-zero on a FAIL.
#
#   bash bench/rootfs/prove-systemd.sh [--binary PATH]     # as root; default .build/release/avmae-serve
#
# The binary must carry its Swift runtime (swift build ... --static-swift-stdlib): the root file system has
# only Debian's libraries. Set-up limits (no network namespace: loopback is the host's, so the daemon gets a
# free port; cgroup v2 here has no memory controller, so MemoryMax= is not enforced) are printed with the table.
source "$(dirname "$0")/lib.sh"

binary="$repo/.build/release/avmae-serve"
[ "${1:-}" = --binary ] && binary="${2:?--binary needs a path}"
[ -x "$binary" ] || die "no binary at $binary (build it with --static-swift-stdlib)"
[ "$(id -u)" -eq 0 ] || die "run as root (mount, unshare, pivot_root)"
fixtures="$repo/Tests/HTTPServerTests/Fixtures"

base="$(rootfs systemd systemd systemd-sysv dbus procps)"
work="$(mktemp -d)"
cgroup="avmae-systemd-$$"
pid1=""
cleanup() {
  [ -n "$pid1" ] && kill -9 "$pid1" 2>/dev/null
  wait
  # The cgroup this run's systemd managed, depth first (the directories outlive their processes).
  unshare --mount bash -c 'mount -t cgroup2 none "$1" && find "$1/$2" -depth -type d -exec rmdir {} + 2>/dev/null' \
    _ "$work" "$cgroup" || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the machine: overlay, install, boot -------------------------------------------------------------------
upper="$work/upper"
mkdir -p "$upper" "$work/overlay-work" "$work/root"
port=$((20000 + RANDOM % 20000))
socket_port=$((port + 1))
"$binary" demo-bundle --seed 7 --out "$upper/var/lib/avmae-serve/models/demo" >/dev/null
bash "$repo/deploy/install.sh" --root "$upper" --binary "$binary" >/dev/null
# The admin's settings: loopback is the host's here, so a free port rather than 8080.
printf 'AVMAE_HOST=127.0.0.1\nAVMAE_PORT=%s\n' "$port" >> "$upper/etc/avmae-serve/avmae-serve.env"
mkdir -p "$upper/etc/systemd/system/avmae-serve.socket.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$socket_port" \
  > "$upper/etc/systemd/system/avmae-serve.socket.d/port.conf"
# No terminal to log in on.
ln -sf /dev/null "$upper/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$upper/etc/systemd/system/getty@.service"

# pivot_root rather than chroot: a chroot may not create user namespaces, which PrivateUsers=yes needs.
boot='
  set -e
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/overlay-work" "$WORK/root"
  cd "$WORK/root"
  mount -t proc proc proc
  mount -t sysfs sysfs sys
  mount -t cgroup2 cgroup2 sys/fs/cgroup
  mount --rbind /dev dev
  mount -t tmpfs tmpfs run
  mount -t tmpfs tmpfs tmp
  mkdir -p .host
  pivot_root . .host
  umount -l /.host
  exec /lib/systemd/systemd --system --log-target=journal --show-status=no'
# The outer shell moves into a cgroup of its own first, which becomes the root of systemd's cgroup namespace.
BASE="$base" WORK="$work" CGROUP="$cgroup" BOOT="$boot" unshare --mount --propagation private bash -c '
  mkdir -p "$WORK/cgroup2" && mount -t cgroup2 none "$WORK/cgroup2"
  mkdir "$WORK/cgroup2/$CGROUP" && echo $$ > "$WORK/cgroup2/$CGROUP/cgroup.procs"
  umount "$WORK/cgroup2"
  exec unshare --pid --fork --uts --ipc --cgroup bash -c "$BOOT"' > "$work/console.log" 2>&1 &
shell_pid=$!
for _ in $(seq 200); do
  pid1="$(pgrep -P "$shell_pid" || true)"
  [ -n "$pid1" ] && [ "$(cat "/proc/$pid1/comm" 2>/dev/null)" = systemd ] && break
  pid1=""
  sleep 0.05
done
[ -n "$pid1" ] || { cat "$work/console.log" >&2; die "systemd did not start"; }

inside() { nsenter -t "$pid1" -m -p -u -i -C -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
unit=avmae-serve.service
show() { inside systemctl show -p "$1" --value "${2:-$unit}"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
journal_since() { inside journalctl -q -o cat -u "$unit" --since "@$1"; }

# classify FIXTURE TYPE [PORT]: prints the top-3 [index, score] pairs.
top3() {
  curl -sf --max-time 30 -H "Content-Type: $2" --data-binary "@$fixtures/$1" \
    "http://127.0.0.1:${3:-$port}/v1/classify?top_k=3" |
    python3 -c 'import json, sys; print(json.dumps([[l["index"], round(l["score"], 4)] for l in json.load(sys.stdin)["labels"]]))'
}
golden() {
  python3 -c 'import json, sys; print(json.dumps([[i, round(s, 4)] for i, s in json.load(open(sys.argv[1]))[sys.argv[2]]]))' \
    "$fixtures/demo-seed7-expected.json" "$1"
}
# Writes into the overlay go through its mount inside the namespace, not into the upper directory behind it.
drop_in() { inside mkdir -p "/etc/systemd/system/$unit.d"; printf '%s\n' "${@:2}" | inside tee "/etc/systemd/system/$unit.d/$1.conf" >/dev/null; }
remove_drop_in() { inside rm -f "/etc/systemd/system/$unit.d/$1.conf"; }

# --- the checks ----------------------------------------------------------------------------------------------
boots() {
  local state=""
  # systemctl answers "offline" until systemd's own socket is up; then --wait waits for the start-up to end.
  for _ in $(seq 300); do
    inside test -S /run/systemd/private && break
    sleep 0.1
  done
  state="$(inside timeout 60 systemctl is-system-running --wait || true)"
  [ "$state" = running ] || [ "$state" = degraded ] || { inside systemctl --failed --no-legend; echo "state: $state"; return 1; }
  echo "$(inside systemctl --version | head -1) is PID 1, system $state$( [ "$state" = degraded ] && echo " (failed: $(inside systemctl --failed --no-legend --plain | awk '{print $1}' | xargs))")"
}

notify_ready() {
  local start=$SECONDS
  inside systemctl start "$unit" || { journal_since 0 | tail -5; return 1; }
  # systemctl start returns once READY=1 arrived: the daemon must already be ready then.
  local ready="$(http_code "http://127.0.0.1:$port/readyz")"
  [ "$(show ActiveState)/$(show SubState)" = active/running ] && [ "$ready" = 200 ] ||
    { echo "$(show ActiveState)/$(show SubState), /readyz $ready"; return 1; }
  echo "systemctl start returned after $((SECONDS - start)) s; Type=$(show Type), active/running, /readyz 200 at once, status \"$(show StatusText)\""
}

classify_golden() {
  local got expected
  got="$(top3 "$1" "$2")" || { echo "classify $1 failed"; return 1; }
  expected="$(golden "$1")"
  [ "$got" = "$expected" ] || { echo "top-3 $got, golden $expected"; return 1; }
  echo "top-3 $got = golden"
}

hardening_in_force() {
  local pid="$(show MainPID)" status
  status="$(inside cat "/proc/$pid/status")"
  local seccomp="$(awk '/^Seccomp:/ {print $2}' <<<"$status")" filters="$(awk '/^Seccomp_filters:/ {print $2}' <<<"$status")"
  local nnp="$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" capeff="$(awk '/^CapEff:/ {print $2}' <<<"$status")"
  local uid="$(awk '/^Uid:/ {print $2}' <<<"$status")"
  local mapped="$(inside cat "/proc/$pid/uid_map" | awk '{print $1}' | xargs | tr ' ' ,)"
  [ "$seccomp" = 2 ] && [ "$nnp" = 1 ] && [ "$capeff" = 0000000000000000 ] && [ "$uid" != 0 ] ||
    { echo "Seccomp=$seccomp NoNewPrivs=$nnp CapEff=$capeff uid=$uid"; return 1; }
  echo "main process: Seccomp=2 ($filters filters), NoNewPrivs=1, CapEff=0, dynamic uid $uid, PrivateUsers: its user namespace maps only uids $mapped"
}

# A transient service with the unit's own SystemCallFilter= lines: the calls the unit excludes answer EPERM.
syscall_filter_denies() {
  local properties=() line
  while read -r line; do properties+=(-p "$line"); done < <(grep -E '^(SystemCallFilter|SystemCallErrorNumber|SystemCallArchitectures)=' "$repo/deploy/avmae-serve.service")
  local open filtered
  open="$(inside systemd-run --quiet --wait --pipe taskset -c 0 true 2>&1 || true)"
  filtered="$(inside systemd-run --quiet --wait --pipe "${properties[@]}" taskset -c 0 true 2>&1 || true)"
  [ -z "$open" ] && grep -q 'Operation not permitted' <<<"$filtered" || { echo "without filter: '$open'; with: '$filtered'"; return 1; }
  local swap_open swap_filtered
  swap_open="$(inside systemd-run --quiet --wait --pipe swapoff /nonexistent 2>&1 || true)"
  swap_filtered="$(inside systemd-run --quiet --wait --pipe "${properties[@]}" swapoff /nonexistent 2>&1 || true)"
  # util-linux words EPERM from swapoff(2) as "Not superuser".
  grep -q 'Not superuser' <<<"$swap_filtered" && ! grep -q 'Not superuser' <<<"$swap_open" ||
    { echo "swapoff without filter: '$swap_open'; with: '$swap_filtered'"; return 1; }
  echo "sched_setaffinity (@resources) and swapoff (@privileged): EPERM under the unit's filter, allowed without it"
}

watchdog() {
  drop_in watchdog-test '[Service]' 'WatchdogSec=2'
  inside systemctl daemon-reload
  inside systemctl restart "$unit"
  local first="$(show WatchdogTimestampMonotonic)"
  sleep 3
  local later="$(show WatchdogTimestampMonotonic)" pid="$(show MainPID)" since="$(date +%s)"
  [ "$later" -gt "$first" ] || { echo "no WATCHDOG=1 in 3 s (timestamp $first -> $later)"; return 1; }
  # A hung daemon (stopped) sends no pings: systemd must kill it and Restart=on-failure start a new one.
  inside kill -STOP "$pid"
  local restarted=""
  # WatchdogSec (2 s) + RestartSec (2 s) + loading and warming the model again.
  for _ in $(seq 120); do
    [ "$(show MainPID)" != "$pid" ] && [ "$(show MainPID)" != 0 ] && [ "$(show ActiveState)" = active ] && { restarted=yes; break; }
    sleep 0.5
  done
  local log="$(journal_since "$since")"
  remove_drop_in watchdog-test
  inside systemctl daemon-reload
  inside systemctl restart "$unit"
  [ -n "$restarted" ] && grep -q 'Watchdog timeout' <<<"$log" || { echo "not restarted by the watchdog"; echo "$log" | tail -3; return 1; }
  echo "pings every 1 s at WatchdogSec=2; a stopped daemon: \"$(grep -m1 -o 'Watchdog timeout.*' <<<"$log")\", restarted as pid $(show MainPID)"
}

# SIGHUP through ExecReload=: a new bundle (replaced by rename, as documented) serves after the reload, the
# main process stays, and requests made during the reload are all answered.
reload() {
  local pid="$(show MainPID)" since="$(date +%s)" models=/var/lib/avmae-serve/models
  inside /usr/local/bin/avmae-serve demo-bundle --seed 3 --out "$models/seed3" >/dev/null
  inside mv "$models/seed3/model.safetensors" "$models/demo/model.safetensors"
  local codes="$work/reload-codes"
  : > "$codes"
  (for _ in $(seq 20); do http_code -H 'Content-Type: audio/wav' --data-binary "@$fixtures/tone.wav" \
      "http://127.0.0.1:$port/v1/classify" >> "$codes"; echo >> "$codes"; done) &
  local load=$!
  inside systemctl reload "$unit" || { echo "systemctl reload failed"; return 1; }
  wait $load
  local answer="$(top3 tone.wav audio/wav)" log="$(journal_since "$since")"
  [ "$(show MainPID)" = "$pid" ] || { echo "main pid changed"; return 1; }
  grep -q 'model reloaded' <<<"$log" || { echo "no 'model reloaded' in the journal"; return 1; }
  [ "$answer" != "$(golden tone.wav)" ] || { echo "still the old model's answer $answer"; return 1; }
  [ "$(sort -u "$codes" | xargs)" = 200 ] || { echo "answers during the reload: $(sort "$codes" | uniq -c | xargs)"; return 1; }
  echo "same pid, 'model reloaded', new model answers $answer, 20/20 requests during the reload 200"
}

# systemctl stop with requests in flight: every one answered, then exit 0 within TimeoutStopSec.
stop_drains() {
  local codes="$work/stop-codes" since="$(date +%s)" i
  : > "$codes"
  for i in $(seq 8); do
    # One write per answer: the eight run at once.
    (echo "$(http_code -H 'Content-Type: audio/flac' --data-binary "@$fixtures/long.flac" \
      "http://127.0.0.1:$port/v1/classify")" >> "$codes") &
  done
  sleep 0.2
  local start=$SECONDS
  inside systemctl stop "$unit"
  wait
  local log="$(journal_since "$since")"
  [ "$(show Result)" = success ] && [ "$(show ExecMainStatus)" = 0 ] ||
    { echo "Result=$(show Result) ExecMainStatus=$(show ExecMainStatus)"; return 1; }
  grep -q 'drained=true' <<<"$log" || { echo "no drained=true in the journal"; return 1; }
  grep -qv '^200$\|^503$\|^$' "$codes" && { echo "answers: $(sort "$codes" | uniq -c | xargs)"; return 1; }
  local after="$(sed -n '/draining/,$p' <<<"$log" | grep -c 'route=/v1/classify status=200' || true)"
  echo "stopped in $((SECONDS - start)) s, exit 0, drained=true; the 8 requests: $(grep . "$codes" | sort | uniq -c | awk '{print $1"x"$2}' | xargs), $after of them answered after the drain began"
}

socket_activation() {
  inside systemctl start avmae-serve.socket
  [ "$(show ActiveState)" = inactive ] || { echo "service already $(show ActiveState)"; return 1; }
  # The first connection starts the service and waits in the backlog until the daemon accepts it.
  local first="$(http_code "http://127.0.0.1:$socket_port/healthz")"
  [ "$first" = 200 ] || { echo "first connection: HTTP $first"; return 1; }
  for _ in $(seq 100); do [ "$(show ActiveState)" = active ] && break; sleep 0.1; done
  local got="$(top3 tone.wav audio/wav "$socket_port")"
  local own="$(http_code "http://127.0.0.1:$port/healthz")"
  inside systemctl stop avmae-serve.socket "$unit"
  [ -n "$got" ] && [ "$own" = 000 ] || { echo "classify '$got', own port answered $own"; return 1; }
  echo "first connection 200 and started the service (TriggeredBy $(show Triggers avmae-serve.socket)); classify $got on the socket's port; AVMAE_PORT unused"
}

int8_refused_under_mdwe() {
  drop_in int8-test '[Service]' 'Environment=AVMAE_PRECISION=int8'
  inside systemctl daemon-reload
  local since="$(date +%s)" status=0
  inside systemctl start "$unit" 2>/dev/null || status=$?
  local log="$(journal_since "$since")"
  inside systemctl stop "$unit"
  inside systemctl reset-failed "$unit" 2>/dev/null || true
  remove_drop_in int8-test
  inside systemctl daemon-reload
  [ $status -ne 0 ] && grep -q 'executable memory' <<<"$log" || { echo "start exit $status"; echo "$log" | tail -3; return 1; }
  echo "start fails: \"$(grep -m1 -o 'precision int8 is not available[^:]*:[^(]*' <<<"$log" | cut -c1-120)\""
}

int8_with_drop_in() {
  inside mkdir -p "/etc/systemd/system/$unit.d"
  inside tee "/etc/systemd/system/$unit.d/low-precision.conf" < "$repo/deploy/low-precision.conf" >/dev/null
  inside systemctl daemon-reload
  local status=0
  inside systemctl start "$unit" || status=$?
  local code="$(http_code -H 'Content-Type: audio/wav' --data-binary "@$fixtures/tone.wav" "http://127.0.0.1:$port/v1/classify")"
  local precision="$(curl -s "http://127.0.0.1:$port/metrics" | grep -o 'precision="[a-z0-9]*"' | head -1)"
  local mdwe="$(show MemoryDenyWriteExecute)"
  inside systemctl stop "$unit"
  remove_drop_in low-precision
  inside systemctl daemon-reload
  [ $status -eq 0 ] && [ "$code" = 200 ] && [ "$precision" = 'precision="int8"' ] ||
    { echo "start $status, classify $code, $precision"; return 1; }
  echo "with deploy/low-precision.conf (MemoryDenyWriteExecute=$mdwe): started, classify 200, $precision"
}

security_score() {
  local score
  score="$(inside systemd-analyze security "$unit" 2>/dev/null | grep -o 'Overall exposure level.*')"
  [ -n "$score" ] || return 1
  echo "systemd-analyze security (running unit): $score"
}

check "systemd boots as PID 1 in the namespaces" boots
check "Type=notify: systemctl start returns on READY=1" notify_ready
check "classify tone.wav under the unit = golden" classify_golden tone.wav audio/wav
check "classify clip.mp4 (video, decode worker) = golden" classify_golden clip.mp4 video/mp4
check "hardening in force on the main process" hardening_in_force
check "SystemCallFilter= answers EPERM" syscall_filter_denies
check "systemd-analyze security" security_score
check "watchdog: pings; a hung daemon is restarted" watchdog
check "systemctl reload (SIGHUP): new bundle, no request lost" reload
check "systemctl stop with requests in flight: drained, exit 0" stop_drains
check "socket activation (avmae-serve.socket)" socket_activation
check "MemoryDenyWriteExecute=yes: int8 refused at start, with the reason" int8_refused_under_mdwe
check "deploy/low-precision.conf: int8 serves" int8_with_drop_in
inside journalctl -o short-monotonic --no-pager > "$cache/prove-systemd-journal.log" 2>&1 || true
print_table
echo "journal of this run: $cache/prove-systemd-journal.log"
echo "set-up: no network namespace (loopback is the host's); cgroup v2 without the memory controller here, so MemoryMax= is not enforced"
[ $failures -eq 0 ]
