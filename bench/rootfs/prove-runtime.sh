#!/usr/bin/env bash
# Proves the container image's runtime stage without pulling a base image: builds (once, cached) a Debian 12
# minbase root file system with the Containerfile's own prepare-runtime.sh, lays the image's files over it
# read-only (as Kubernetes' readOnlyRootFilesystem does), and starts the daemon as the image would (its ENV,
# its USER, PID 1 of its own PID namespace). Then: no library missing, the health check, classify answers
# equal to the recorded golden, int8 on oneDNN, SIGTERM drained to exit 0. With buildah installed, the same
# files also become an OCI image, whose size is reported. Prints a pass/fail table; exits non-zero on a FAIL.
#
#   bash bench/rootfs/prove-runtime.sh [--binary PATH]     # as root; default .build/release/avmae-serve
#
# The binary must be built as the Containerfile builds it:
#   swift build -c release --product avmae-serve --static-swift-stdlib
source "$(dirname "$0")/lib.sh"

binary="$repo/.build/release/avmae-serve"
[ "${1:-}" = --binary ] && binary="${2:?--binary needs a path}"
[ -x "$binary" ] || die "no binary at $binary (build it with --static-swift-stdlib)"
[ "$(id -u)" -eq 0 ] || die "run as root (mount, unshare, chroot)"
fixtures="$repo/Tests/HTTPServerTests/Fixtures"

base="$(rootfs runtime)"
work="$(mktemp -d)"
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && [ ! -f "$work/exit-status" ] && kill -9 "$daemon_pid" 2>/dev/null
  wait
  rm -rf "$work"
}
trap cleanup EXIT

# What the builder stage puts in /out: the binary, the health check and the demo bundle (seed 7, whose
# answers Tests/HTTPServerTests/Fixtures/demo-seed7-expected.json records).
stage="$work/stage"
install -D -m 0755 "$binary" "$stage/usr/local/bin/avmae-serve"
install -D -m 0755 "$container/healthcheck.sh" "$stage/usr/local/bin/avmae-healthcheck"
"$binary" demo-bundle --seed 7 --out "$stage/models/demo" >/dev/null
mkdir -p "$work/root"

# The image's ENV and USER lines, read from the Containerfile so the proof runs what the image runs.
image_env=($(sed -n 's/^ENV //p' "$container/Containerfile"))
image_user="$(sed -n 's/^USER //p' "$container/Containerfile")"
port=$((20000 + RANDOM % 20000))

# start_daemon [VAR=VALUE...]: the daemon as the image's entry point, PID 1 of a new PID namespace, in a
# read-only overlay of the image's files on the root file system (/proc and /dev as a runtime provides).
# Its exit status lands in $work/exit-status.
start_daemon() {
  rm -f "$work/exit-status"
  {
    status=0
    STAGE="$stage" BASE="$base" USERSPEC="$image_user" unshare --mount --pid --fork --propagation private bash -c '
      set -e; root="$1"; shift
      mount -t overlay overlay -o "lowerdir=$STAGE:$BASE" "$root"
      mount -t proc proc "$root/proc"
      mount --rbind /dev "$root/dev"
      exec chroot --userspec="$USERSPEC" "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin "$@" \
        /usr/local/bin/avmae-serve serve' _ "$work/root" "${image_env[@]}" AVMAE_HOST=127.0.0.1 AVMAE_PORT=$port "$@" \
      > "$work/daemon.log" 2>&1 || status=$?
    echo $status > "$work/exit-status"
  } &
  local shell_pid=$! unshare_pid=""
  # shell_pid -> unshare -> the daemon (bash execs chroot, chroot execs the daemon).
  daemon_pid=""
  for _ in $(seq 200); do
    unshare_pid="$(pgrep -P "$shell_pid" || true)"
    [ -n "$unshare_pid" ] && daemon_pid="$(pgrep -P "$unshare_pid" || true)"
    [ -n "$daemon_pid" ] && break
    sleep 0.05
  done
  [ -n "$daemon_pid" ] || { cat "$work/daemon.log" >&2; die "the daemon did not start"; }
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/daemon.log" >&2
  die "the daemon did not become ready"
}

# inside COMMAND...: runs COMMAND in the daemon's namespaces, root and environment, as the image's user
# (what `docker exec` and Docker's health checks do).
inside() {
  local environment
  mapfile -d '' environment < "/proc/$daemon_pid/environ"
  nsenter -t "$daemon_pid" -m -p -r -w setpriv --reuid="${image_user%:*}" --regid="${image_user#*:}" --clear-groups \
    env -i "${environment[@]}" "$@"
}

no_missing_library() {
  local missing
  missing="$(inside ldd /usr/local/bin/avmae-serve | grep 'not found' || true)"
  [ -z "$missing" ] || { echo "missing: $missing"; return 1; }
  echo "ldd: $(inside ldd /usr/local/bin/avmae-serve | wc -l) libraries, all found; no Swift runtime library among them: $(inside ldd /usr/local/bin/avmae-serve | grep -c -i swift || true)"
}

runs_as_image_user() {
  local uid="$(awk '/^Uid:/ {print $2}' "/proc/$daemon_pid/status")"
  [ "$uid:$(awk '/^Gid:/ {print $2}' "/proc/$daemon_pid/status")" = "$image_user" ] || { echo "uid $uid"; return 1; }
  echo "uid:gid $image_user, PID $(awk '/^NSpid:/ {print $NF}' "/proc/$daemon_pid/status") in its namespace, read-only root"
}

health_check() {
  inside /usr/local/bin/avmae-healthcheck && echo "avmae-healthcheck exit 0 (GET /healthz 200 through bash /dev/tcp)"
}

# classify FIXTURE TYPE: top-3 answer equal to the recorded golden of the seed-7 demo bundle.
classify_matches_golden() {
  local fixture="$1" type="$2" answer
  answer="$(curl -sf -H "Content-Type: $type" --data-binary "@$fixtures/$fixture" \
    "http://127.0.0.1:$port/v1/classify?top_k=3")" || { echo "classify failed"; return 1; }
  python3 - "$fixtures/demo-seed7-expected.json" "$fixture" "$answer" <<'EOF'
import json, sys
expected = json.load(open(sys.argv[1]))[sys.argv[2]]
answer = json.loads(sys.argv[3])
got = [[label["index"], label["score"]] for label in answer["labels"]]
ok = [g[0] for g in got] == [e[0] for e in expected] and all(abs(g[1] - e[1]) < 1e-4 for g, e in zip(got, expected))
print(("" if ok else "MISMATCH ") + f"top-3 {got} vs golden {expected}")
sys.exit(0 if ok else 1)
EOF
}

classify_ok() {
  local code
  code="$(curl -s -o "$work/answer.json" -w '%{http_code}' -H 'Content-Type: audio/wav' \
    --data-binary "@$fixtures/tone.wav" "http://127.0.0.1:$port/v1/classify?top_k=1")"
  [ "$code" = 200 ] || { echo "HTTP $code: $(cat "$work/answer.json")"; return 1; }
  echo "HTTP 200 $(head -c 160 "$work/answer.json")"
}

precision_is() {
  local info
  info="$(curl -s "http://127.0.0.1:$port/metrics" | grep '^avmae_compute_info')"
  grep -q "precision=\"$1\"" <<<"$info" || { echo "$info"; return 1; }
  echo "$info"
}

# SIGTERM as `docker stop` sends it to PID 1: a drain, then exit 0 (PID 1 gets no default signal action).
stops_cleanly_on_sigterm() {
  kill -TERM "$daemon_pid"
  for _ in $(seq 400); do [ -f "$work/exit-status" ] && break; sleep 0.1; done
  local status="$(cat "$work/exit-status" 2>/dev/null || echo "none after 40 s")"
  [ "$status" = 0 ] || { tail -3 "$work/daemon.log"; echo "exit $status"; return 1; }
  echo "exit 0 after SIGTERM; last log line: $(tail -1 "$work/daemon.log" | cut -c1-100)"
}

say "runtime root file system: $base ($(du -sm "$base" | cut -f1) MB)"
start_daemon
check "no shared library missing in the runtime stage" no_missing_library
check "runs as the image's USER, PID 1, read-only root" runs_as_image_user
check "HEALTHCHECK (avmae-healthcheck)" health_check
check "classify tone.wav = golden (audio, decode worker)" classify_matches_golden tone.wav audio/wav
check "classify clip.mp4 = golden (audio+video, decode worker)" classify_matches_golden clip.mp4 video/mp4
check "SIGTERM to PID 1: drain, exit 0" stops_cleanly_on_sigterm

start_daemon AVMAE_PRECISION=int8
check "int8 on oneDNN (libdnnl2, libgomp1): classify" classify_ok
check "int8 on oneDNN: the precision that runs" precision_is int8
check "int8: SIGTERM, exit 0" stops_cleanly_on_sigterm

if command -v buildah >/dev/null; then
  source "$(dirname "$0")/oci-image.sh"
  check "OCI image from this root file system (buildah)" oci_image "$base" "$stage"
else
  say "buildah not installed: no OCI image made"
fi
print_table
[ $failures -eq 0 ]
