#!/usr/bin/env python3
"""Reliability suite for `avmae-serve serve`: a real daemon on loopback with a demo bundle, five bounded
scenarios, a summary table, and exit status 1 if any check fails. Python 3 standard library only.

  python3 bench/reliability/reliability.py [--bin .build/release/avmae-serve] [--overload-seconds 30]
  python3 bench/reliability/reliability.py --size large [--bundle DIR]      # ViT-Large shapes; minutes per daemon

--size large runs the same scenarios on `demo-bundle --size large` (the released audio+video model's shapes,
~2.4 GB; --bundle reuses one already written). What changes with it: daemons may take minutes to become ready
(load + warm-up), the client timeout is 600 s, the RSS bound adds the weights' size (they are mapped and count
in RSS once touched), and a 503 with Retry-After counts as load shed in decoderfault (16 clients of 17 s
audio+video rows are far more work than the 30 s queue deadline; shedding is the designed answer, not a loss).

Scenarios (the settings each daemon runs with are printed with its results):
  overload   4x more concurrent clients than the server holds rows (max_batch 8 running + max_queue 16
             waiting = 24 rows, so 96 clients, one 10 s WAV = one row each), back to back for
             --overload-seconds. Every request must get 200, or 503 with Retry-After; none may hit the client
             timeout (60 s); peak RSS stays under --rss-bound-mib.
  slowloris  50 connections trickle headers (25) or a declared body (25) one piece a second, on a daemon with
             connection_limit 100 (MHD splits it between its 2 polling threads, 50 each, so 50 tricklers cannot
             fill one thread's share however they land). A normal client's requests meanwhile must each answer
             within 5 s outside the model (its queue and inference timings left out); then 80 more idle
             connections must not push the daemon past its limit (its open sockets are counted in /proc). At
             the limit MHD stops accepting, so the ones over it wait in the kernel backlog (counted as not
             closed) until a slot frees.
  kill       SIGKILL while a request's body is half sent; a new process on the same port reaches /readyz 200
             and answers a classify with 200.
  badinput   1000 requests cycling through Tests/MediaTests/Fixtures' bad files, truncated clips and malformed
             HTTP (wrong Content-Type, empty body, huge declared length, no length, garbage bytes, truncated
             multipart, unknown path, wrong method). Each must get its expected 4xx; RSS is measured after a
             first pass of the corpus and again after the 1000, and may grow by at most --rss-growth-mib.
  decoderfault  16 clients send good clips (WAV, MP4 with video) back to back, first without faults (to warm
             up), then while a decode worker is SIGKILLed in the middle of a clip --worker-kills times (a worker
             counts as mid-clip while its clip memory, descriptor 4, has file offset 1). The requests that get 422
             undecodable_clip saying the decoder was killed, the kills the daemon logs as having cost a clip,
             and its avmae_decode_worker_failures_total{reason="killed"} must be the same number (a kill just
             after the last window costs nothing); every other request must get 200, the pool must be back to
             full strength, and the daemon's RSS after the faulty phase may exceed that after the warm phase by
             at most --fault-rss-growth-mib.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HTTP_FIXTURES = os.path.join(ROOT, "Tests", "HTTPServerTests", "Fixtures")
MEDIA_FIXTURES = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures")
CLIENT_TIMEOUT = 60.0
READY_TIMEOUT = 120.0
# --size large: 503 + Retry-After is an allowed answer in decoderfault.
SHED_ALLOWED = False


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def read(name, folder=HTTP_FIXTURES):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


class Daemon:
    """One `avmae-serve serve` process; `port=0` lets the kernel choose."""

    def __init__(self, binary, bundle, scratch, settings, port=0, environment=None):
        self.settings = settings
        args = [binary, "serve", "--bundle", bundle, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        self.stderr = open(os.path.join(scratch, f"stderr-{time.time_ns()}.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=dict(os.environ, **(environment or {})))
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"daemon did not start: {line!r}; see {self.stderr.name}")
        self.port = int(line.strip().rsplit(":", 1)[1])

    def wait_ready(self, timeout=None):
        timeout = timeout or READY_TIMEOUT
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}; see {self.stderr.name}")
            time.sleep(0.05)
        raise RuntimeError("daemon never became ready")

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def open_sockets(self):
        """Sockets the daemon holds for clients (and listening): the channels to its decode workers (one
        socket-pair end each) are not counted."""
        count = -len(decode_workers(self.proc.pid))
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                count += os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return count

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def request(port, method, path, body=None, headers=None, timeout=None):
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    timeout = timeout or CLIENT_TIMEOUT
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def raw(port, data, timeout=10.0):
    """Sends raw bytes, half-closes, returns the status code of the answer (0 if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking everything
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


class Results:
    """Checks and numbers, printed as one summary at the end."""

    def __init__(self):
        self.rows = []
        self.failures = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok

    def row(self, scenario, **numbers):
        self.rows.append((scenario, numbers))
        print(f"[{scenario}] " + "  ".join(f"{k}={v}" for k, v in numbers.items()), flush=True)


def overload(binary, bundle, scratch, seconds, rss_bound, results):
    settings = {"max_batch": 8, "max_queue": 16, "max_delay_ms": 5, "request_timeout_seconds": 10}
    clients = 4 * (settings["max_batch"] + settings["max_queue"])
    daemon = Daemon(binary, bundle, scratch, settings)
    try:
        daemon.wait_ready()
        tone = read("tone.wav")
        lock = threading.Lock()
        latencies, counts = [], {"ok": 0, "rejected": 0, "rejected_without_retry_after": 0, "errors": 0,
                                 "timeouts": 0}
        other = {}
        deadline = time.monotonic() + seconds

        def client():
            while time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    status, headers, _ = request(daemon.port, "POST", "/v1/classify", tone,
                                                 {"Content-Type": "audio/wav"})
                except socket.timeout:
                    key = "timeouts"
                except OSError:
                    key = "errors"
                else:
                    if status == 200:
                        key = "ok"
                    elif status == 503:
                        key = "rejected" if "retry-after" in headers else "rejected_without_retry_after"
                    else:
                        key = "errors"
                        with lock:
                            other[status] = other.get(status, 0) + 1
                elapsed = time.monotonic() - start
                with lock:
                    counts[key] += 1
                    if key == "ok":
                        latencies.append(elapsed)
                if key == "rejected":
                    time.sleep(0.05)  # a short pause, not the full Retry-After: the point is pressure

        rss_start = daemon.rss_mib()
        peak = [rss_start]
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], daemon.rss_mib())
            time.sleep(0.5)
        for t in threads:
            t.join()
        total = sum(counts.values())
        results.row("overload", clients=clients, seconds=seconds, requests=total, ok=counts["ok"],
                    rejected_503=counts["rejected"], errors=counts["errors"], timeouts=counts["timeouts"],
                    p50_ms=round(percentile(latencies, 0.5) * 1000), p99_ms=round(percentile(latencies, 0.99) * 1000),
                    rss_start_mib=round(rss_start), rss_peak_mib=round(peak[0]), rss_bound_mib=rss_bound)
        results.check(counts["errors"] == 0, f"overload: {counts['errors']} answers other than 200/503 ({other})")
        results.check(counts["timeouts"] == 0, f"overload: {counts['timeouts']} requests hit the client timeout")
        results.check(counts["rejected_without_retry_after"] == 0, "overload: 503 without Retry-After")
        results.check(counts["ok"] > 0 and counts["rejected"] > 0,
                      f"overload: expected both 200s and 503s, got {counts}")
        results.check(peak[0] < rss_bound, f"overload: peak RSS {peak[0]:.0f} MiB over the {rss_bound} MiB bound")
    finally:
        daemon.stop()


def slowloris(binary, bundle, scratch, results):
    limit, extra_count, trickle_seconds, bound = 100, 80, 15, 5.0
    daemon = Daemon(binary, bundle, scratch, {"connection_limit": limit, "connection_timeout_seconds": 5})
    sockets = []
    try:
        daemon.wait_ready()
        stop = threading.Event()

        def trickler(index):
            try:
                s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
                sockets.append(s)
                if index % 2 == 0:  # headers that never end
                    s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n")
                    pieces = (f"X-Slow-{i}: {i}\r\n".encode() for i in range(10_000))
                else:  # complete headers, a body that never arrives
                    s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                              b"Content-Length: 320044\r\n\r\n")
                    pieces = (b"RIFF" for _ in range(10_000))
                for piece in pieces:
                    if stop.wait(1.0):
                        return
                    s.sendall(piece)
            except OSError:
                pass  # the server may drop a trickler; that is allowed

        threads = [threading.Thread(target=trickler, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        tone = read("tone.wav")
        # What the tricklers could add is the time a request spends outside the model: its queue wait and
        # inference (timings_ms in the answer) are left out, so the bound holds at any model size.
        latencies, excess, failed = [], [], 0
        end = time.monotonic() + trickle_seconds
        while time.monotonic() < end:
            for method, path, body, headers in [("GET", "/healthz", None, {}),
                                                ("POST", "/v1/classify", tone, {"Content-Type": "audio/wav"})]:
                start = time.monotonic()
                model_seconds = 0.0
                try:
                    status, _, answer = request(daemon.port, method, path, body, headers,
                                                timeout=bound if body is None else None)
                    if status == 200 and body is not None:
                        timings = json.loads(answer)["timings_ms"]
                        model_seconds = (timings["queue"] + timings["inference"]) / 1000
                except OSError:
                    status = 0
                latencies.append(time.monotonic() - start)
                excess.append(latencies[-1] - model_seconds)
                failed += status != 200
            time.sleep(0.2)
        held_by_trickle = daemon.open_sockets()

        # More idle connections than the limit leaves room for.
        extra = []
        for _ in range(extra_count):
            try:
                extra.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
            except OSError:
                pass
        time.sleep(1.0)
        held_at_limit = daemon.open_sockets()
        # Checked at once, well inside connection_timeout_seconds: none should have been closed, the server
        # holds what fits and the rest wait for accept().
        closed_by_server = 0
        for s in extra:
            s.setblocking(False)
            try:
                closed_by_server += s.recv(1) == b""
            except BlockingIOError:
                pass  # still open: the server kept it
            except OSError:
                closed_by_server += 1  # reset by the server
        stop.set()
        for t in threads:
            t.join()
        for s in sockets + extra:
            s.close()
        time.sleep(0.5)
        after = request(daemon.port, "GET", "/readyz", timeout=bound)[0]
        # Sockets the process holds: the listening one plus one per connection.
        results.row("slowloris", tricklers=50, connection_limit=limit, normal_requests=len(latencies), failed=failed,
                    p50_ms=round(percentile(latencies, 0.5) * 1000), p99_ms=round(percentile(latencies, 0.99) * 1000),
                    max_ms=round(max(latencies) * 1000), max_outside_model_ms=round(max(excess) * 1000),
                    sockets_with_tricklers=held_by_trickle,
                    sockets_with_extra=held_at_limit, extra_closed_by_server=closed_by_server,
                    readyz_after=after)
        results.check(failed == 0, f"slowloris: {failed} normal requests failed")
        results.check(max(excess) < bound, f"slowloris: a normal request took {max(excess):.1f} s outside the model (bound {bound} s)")
        results.check(held_at_limit <= limit + 1, f"slowloris: {held_at_limit - 1} connections open, limit {limit}")
        results.check(after == 200, "slowloris: /readyz not 200 afterwards")
    finally:
        for s in sockets:
            s.close()
        daemon.stop()


def kill_and_restart(binary, bundle, scratch, results):
    first = Daemon(binary, bundle, scratch, {})
    port = first.port
    try:
        first.wait_ready()
        tone = read("tone.wav")
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                  + f"Content-Length: {len(tone)}\r\n\r\n".encode() + tone[: len(tone) // 2])
        time.sleep(0.2)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        try:
            cut = s.recv(1) == b""
        except OSError:
            cut = True
        s.close()
    finally:
        first.stop()
    start = time.monotonic()
    second = Daemon(binary, bundle, scratch, {}, port=port)
    try:
        ready = second.wait_ready()
        status = request(port, "POST", "/v1/classify", tone, {"Content-Type": "audio/wav"})[0]
        results.row("kill", killed_exit=first.proc.returncode, client_saw_close=cut, same_port=second.port == port,
                    restart_to_ready_s=round(time.monotonic() - start, 2), ready_wait_s=round(ready, 2),
                    classify_after=status)
        results.check(second.port == port, "kill: restart did not get the same port")
        results.check(status == 200, f"kill: classify after restart answered {status}")
    finally:
        second.stop()


def bad_corpus():
    """(name, send) pairs; send(port) returns the status. Expected statuses are in EXPECTED."""
    wav = {"Content-Type": "audio/wav"}
    corpus = []
    for name in ["fuzz_wav_2ghz_rate.wav", "declared_16000x16000.mov", "tiny_1x1.mkv"]:
        data = read(name, MEDIA_FIXTURES)
        corpus.append((name, lambda port, d=data: request(port, "POST", "/v1/classify", d,
                                                          {"Content-Type": "application/octet-stream"})[0]))
    for name in ["sine_44k_stereo_1s.wav", "bars_h264_aac.mp4", "sine_48k_stereo_1s.ogg"]:
        data = read(name, MEDIA_FIXTURES)[: 300]
        corpus.append((f"{name} cut to 300 B", lambda port, d=data: request(
            port, "POST", "/v1/classify", d, {"Content-Type": "application/octet-stream"})[0]))
    tone = read("tone.wav")
    boundary = b"relBoundary"
    truncated_form = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.wav\"\r\n"
                      b"Content-Type: audio/wav\r\n\r\n" + tone[:1000])
    corpus += [
        ("wrong Content-Type", lambda port: request(port, "POST", "/v1/classify", tone, {"Content-Type": "text/plain"})[0]),
        ("empty body", lambda port: request(port, "POST", "/v1/classify", b"", wav)[0]),
        ("garbage body", lambda port: request(port, "POST", "/v1/classify", os.urandom(2000), wav)[0]),
        ("huge declared length", lambda port: raw(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
                                                   b"Content-Type: audio/wav\r\nContent-Length: 1000000000000\r\n\r\nRIFF")),
        ("no length", lambda port: raw(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                                        b"Connection: close\r\n\r\n")),
        ("binary garbage", lambda port: raw(port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")),
        ("malformed header line", lambda port: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")),
        ("non-numeric length", lambda port: raw(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
                                                 b"Content-Type: audio/wav\r\nContent-Length: abc\r\n\r\n")),
        ("bad chunk size", lambda port: raw(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                                             b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")),
        ("HTTP/9.9", lambda port: raw(port, b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n")),
        ("truncated multipart", lambda port: request(
            port, "POST", "/v1/classify", truncated_form,
            {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()})[0]),
        ("unknown path", lambda port: request(port, "GET", "/v2/nothing")[0]),
        ("wrong method", lambda port: request(port, "DELETE", "/v1/classify")[0]),
    ]
    return corpus


# What each bad input must get: undecodable clips 422 (a frame over the size limit 413), an empty body 400,
# HTTP-level mistakes their 4xx (MHD itself answers malformed headers and lengths with 400 and an unknown HTTP
# version with 505). Bytes that are not a request line at all are closed without an answer by MHD: 0 here.
EXPECTED = {
    "fuzz_wav_2ghz_rate.wav": 422, "declared_16000x16000.mov": 413, "tiny_1x1.mkv": 422,
    "sine_44k_stereo_1s.wav cut to 300 B": 422, "bars_h264_aac.mp4 cut to 300 B": 422,
    "sine_48k_stereo_1s.ogg cut to 300 B": 422,
    "wrong Content-Type": 415, "empty body": 400, "garbage body": 422, "huge declared length": 413,
    "no length": 411, "binary garbage": 0, "malformed header line": 400, "non-numeric length": 400,
    "bad chunk size": 400, "HTTP/9.9": 505, "truncated multipart": 400, "unknown path": 404,
    "wrong method": 405,
}


def bad_input(binary, bundle, scratch, total, growth_bound, results):
    daemon = Daemon(binary, bundle, scratch, {"max_body_bytes": 8 * 1024 * 1024})
    try:
        daemon.wait_ready()
        corpus = bad_corpus()
        wrong = {}
        for name, send in corpus:  # first pass: warms allocator pools and lazily-built state
            status = send(daemon.port)
            if status != EXPECTED[name]:
                wrong[name] = status
        rss_before = daemon.rss_mib()
        latencies = []
        for i in range(total):
            name, send = corpus[i % len(corpus)]
            start = time.monotonic()
            status = send(daemon.port)
            latencies.append(time.monotonic() - start)
            if status != EXPECTED[name]:
                wrong[name] = status
        rss_after = daemon.rss_mib()
        healthy = request(daemon.port, "POST", "/v1/classify", read("tone.wav"), {"Content-Type": "audio/wav"})[0]
        results.row("badinput", kinds=len(corpus), requests=total, wrong_status=len(wrong),
                    p50_ms=round(percentile(latencies, 0.5) * 1000, 1),
                    p99_ms=round(percentile(latencies, 0.99) * 1000, 1), rss_before_mib=round(rss_before, 1),
                    rss_after_mib=round(rss_after, 1), classify_after=healthy)
        results.check(not wrong, f"badinput: wrong statuses {wrong} (expected {[(k, EXPECTED[k]) for k in wrong]})")
        results.check(rss_after - rss_before <= growth_bound,
                      f"badinput: RSS grew {rss_after - rss_before:.1f} MiB over {total} requests (bound {growth_bound})")
        results.check(healthy == 200, f"badinput: a good clip afterwards answered {healthy}")
    finally:
        daemon.stop()


def decode_workers(pid):
    """The daemon's decode workers: its children running `decode-worker`."""
    pids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    workers = []
    for child in pids:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"decode-worker" in f.read():
                    workers.append(child)
        except OSError:
            pass
    return workers


def mid_clip(worker):
    """The daemon sets the file offset of a worker's clip memory (fd 4) to 1 while a clip is in flight."""
    try:
        with open(f"/proc/{worker}/fdinfo/4") as f:
            return any(line.split() == ["pos:", "1"] for line in f)
    except OSError:
        return False


def decoder_fault(binary, bundle, scratch, kills, growth_bound, results):
    # max_batch 1: the inference workspace grows to the largest batch it has seen, which would make RSS depend
    # on how requests happened to batch rather than on what the faults leave behind.
    settings = {"decode_workers": 2, "decode_threads": 2, "max_batch": 1, "max_queue": 64,
                "request_timeout_seconds": 30}
    clients = 16
    killed_message = ("the clip could not be decoded: the decoder failed on this clip "
                      "(its process was killed by SIGKILL)")
    # A fixed mmap threshold makes glibc give every large block (a request's frames are 19 MB) back on free, so
    # RSS in a quiet moment is live memory, not whatever the allocator kept from the busiest instant.
    daemon = Daemon(binary, bundle, scratch, settings, environment={"MALLOC_MMAP_THRESHOLD_": "131072"})
    try:
        daemon.wait_ready()
        clips = [(read("tone.wav"), "audio/wav"), (read("clip.mp4"), "video/mp4")]
        lock = threading.Lock()
        counts = {"ok": 0, "killed_422": 0, "shed_503": 0, "other": 0}
        other = {}

        def traffic(during):
            """16 clients back to back until `during()` returns."""
            stop = threading.Event()

            def client(index):
                n = index
                while not stop.is_set():
                    body, kind = clips[n % len(clips)]
                    n += 1
                    try:
                        status, headers, answer = request(daemon.port, "POST", "/v1/classify", body,
                                                          {"Content-Type": kind})
                    except OSError as error:
                        status, headers, answer = f"client error {error}", {}, b""
                    key = ("ok" if status == 200 else
                           "killed_422" if status == 422 and killed_message.encode() in answer else
                           "shed_503" if SHED_ALLOWED and status == 503 and "retry-after" in headers else "other")
                    with lock:
                        counts[key] += 1
                        if key == "other":
                            other[status] = answer[:200]

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            during()
            stop.set()
            for t in threads:
                t.join()

        # The same load without kills first, so the allocator has reached its working size; RSS is compared
        # between the two quiet moments after each phase.
        traffic(lambda: time.sleep(kills))
        time.sleep(1.0)  # the last answers' buffers are freed just after the client has them
        rss_start = daemon.rss_mib()
        warm_ok = counts["ok"]
        killed_pids = []

        def kill_workers():
            give_up = time.monotonic() + 30 * kills
            while len(killed_pids) < kills and time.monotonic() < give_up:
                busy = [w for w in decode_workers(daemon.proc.pid) if mid_clip(w)]
                if not busy:
                    time.sleep(0.001)
                    continue
                os.kill(busy[0], signal.SIGKILL)
                killed_pids.append(busy[0])
                # Let the pool replace it and some requests pass before the next kill.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and (busy[0] in decode_workers(daemon.proc.pid)
                                                       or len(decode_workers(daemon.proc.pid)) < 2):
                    time.sleep(0.01)
                time.sleep(0.5)

        traffic(kill_workers)
        time.sleep(1.0)
        rss_end = daemon.rss_mib()
        metrics = request(daemon.port, "GET", "/metrics")[2].decode()
        counted = next((int(float(line.split()[-1])) for line in metrics.splitlines()
                        if line.startswith('avmae_decode_worker_failures_total{reason="killed"}')), 0)
        workers_after = len(decode_workers(daemon.proc.pid))
        healthy = request(daemon.port, "POST", "/v1/classify", clips[1][0], {"Content-Type": "video/mp4"})[0]
        # A kill that lands after the worker has sent its last window (it is still "mid-clip" until the daemon
        # empties the clip memory) costs nothing: the daemon has the answer. Which kills hit a clip the daemon
        # says in its log, one line per failed worker with its pid.
        daemon.stderr.flush()
        with open(daemon.stderr.name) as f:
            log = f.read()
        hit = [pid for pid in killed_pids if f"pid={pid} reason=killed" in log]
        results.row("decoderfault", clients=clients, kills=len(killed_pids), kills_mid_decode=len(hit),
                    ok=counts["ok"], ok_while_killing=counts["ok"] - warm_ok, killed_422=counts["killed_422"],
                    shed_503=counts["shed_503"], other=counts["other"], worker_failures_counted=counted, workers_after=workers_after,
                    rss_after_warm_mib=round(rss_start, 1), rss_after_kills_mib=round(rss_end, 1),
                    classify_after=healthy)
        results.check(len(killed_pids) == kills, f"decoderfault: only {len(killed_pids)} of {kills} kills found a worker mid-clip")
        results.check(len(hit) > 0, "decoderfault: no kill hit a clip in decoding")
        results.check(counts["killed_422"] == len(hit) == counted,
                      f"decoderfault: {counts['killed_422']} decoder-failed 422s, {len(hit)} kills mid-decode, "
                      f"{counted} worker failures counted: all three must agree")
        results.check(counts["other"] == 0, f"decoderfault: {counts['other']} other answers: {other}")
        results.check(counts["ok"] > warm_ok, "decoderfault: no request succeeded while workers were killed")
        results.check(workers_after == settings["decode_workers"], f"decoderfault: {workers_after} workers afterwards")
        results.check(rss_end - rss_start <= growth_bound,
                      f"decoderfault: RSS grew {rss_end - rss_start:.1f} MiB (bound {growth_bound})")
        results.check(healthy == 200, f"decoderfault: a good clip afterwards answered {healthy}")
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("AVMAE_SERVE_BIN", os.path.join(ROOT, ".build/release/avmae-serve")))
    parser.add_argument("--overload-seconds", type=float, default=30)
    parser.add_argument("--rss-bound-mib", type=float, default=512)
    parser.add_argument("--bad-requests", type=int, default=1000)
    parser.add_argument("--rss-growth-mib", type=float, default=8)
    parser.add_argument("--worker-kills", type=int, default=5)
    parser.add_argument("--fault-rss-growth-mib", type=float, default=8)
    parser.add_argument("--size", choices=["small", "large"], default="small",
                        help="demo bundle size: small (CI) or large (ViT-Large shapes, ~2.4 GB, minutes per daemon)")
    parser.add_argument("--bundle", help="use this bundle instead of writing a demo bundle of --size")
    parser.add_argument("--only", choices=["overload", "slowloris", "kill", "badinput", "decoderfault"], action="append")
    args = parser.parse_args()
    results = Results()
    started = time.monotonic()
    global CLIENT_TIMEOUT, READY_TIMEOUT, SHED_ALLOWED
    if args.size == "large":
        CLIENT_TIMEOUT, READY_TIMEOUT, SHED_ALLOWED = 600.0, 1800.0, True
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or os.path.join(scratch, "bundle")
        if not args.bundle:
            subprocess.run([args.bin, "demo-bundle", "--out", bundle, "--size", args.size], check=True,
                           stdout=subprocess.DEVNULL)
        # Mapped weights count in RSS once the model has touched them.
        rss_bound = args.rss_bound_mib + os.path.getsize(os.path.join(bundle, "model.safetensors")) / 2**20
        print(f"reliability: {args.size} bundle {bundle}, RSS bound {rss_bound:.0f} MiB", flush=True)
        chosen = args.only or ["overload", "slowloris", "kill", "badinput", "decoderfault"]
        if "overload" in chosen:
            overload(args.bin, bundle, scratch, args.overload_seconds, round(rss_bound), results)
        if "slowloris" in chosen:
            slowloris(args.bin, bundle, scratch, results)
        if "kill" in chosen:
            kill_and_restart(args.bin, bundle, scratch, results)
        if "badinput" in chosen:
            bad_input(args.bin, bundle, scratch, args.bad_requests, args.rss_growth_mib, results)
        if "decoderfault" in chosen:
            decoder_fault(args.bin, bundle, scratch, args.worker_kills, args.fault_rss_growth_mib, results)
    print(f"\nreliability: {len(results.rows)} scenarios in {time.monotonic() - started:.0f} s")
    for scenario, numbers in results.rows:
        print(f"  {scenario:10s} " + "  ".join(f"{k}={v}" for k, v in numbers.items()))
    for failure in results.failures:
        print(f"FAIL {failure}")
    print("reliability: OK" if not results.failures else f"reliability: {len(results.failures)} check(s) failed")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
