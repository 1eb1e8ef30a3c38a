#!/usr/bin/env python3
"""Full-size (ViT-Large audio+video) serving costs and capacity: the numbers the deploy defaults and the
autoscaling rule are derived from (deploy/README.md "Capacity"). Python 3 standard library only.

  python3 bench/fullsize.py --bin .build/release/avmae-serve [--bundle DIR] [--only cost|levels]

The bundle defaults to `avmae-serve demo-bundle --size large` (the released model's shapes, seeded random
weights, ~2.4 GB), written once into --scratch and reused. Two phases, each on its own daemon:

  cost    seconds of model time per row of each kind (audio, video, audiovisual) run alone (batch 1) and in
          one batch of 4 rows, interleaved (1, 4, 4, 1, ...) for --reps rounds. A request of one row runs
          as a batch of 1; a request of 4 rows (a 40 s WAV with modality=audio, or crops=4 for video) fills
          one batch of 4 (max_batch 4, max_batch_seconds lifted). Times come from the daemon's own metrics (avmae_inference_duration_seconds and
          avmae_batch_size, whose sum and count must move by exactly that one batch), so HTTP and decode are
          left out.
  levels  per-replica capacity for one request kind (--level-clip, default a 10 s WAV classified on audio):
          closed loop with --capacity-clients clients for --capacity-seconds, then open-loop Poisson arrivals at
          50%, 100% and 200% of that capacity for --level-seconds each, on a daemon with the shipped defaults
          (or --set overrides). Reports 200s, 503s, anything else and client timeouts (lost = other + timeouts +
          connection errors, which must be 0), p50/p99 latency of the 200s and the highest
          avmae_queue_estimated_seconds seen.

It prints one JSON object per phase; bench/fullsize-results.md holds a run's numbers.
"""
import argparse
import http.client
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import wave

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FIXTURES = os.path.join(ROOT, "Tests", "HTTPServerTests", "Fixtures")
# Rows in the batched case: video rows batch through crops=4, the only multi-crop request.
BATCH = 4


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def tone_wav(seconds, hz=440.0, rate=16000):
    """A sine of `seconds` as 16 kHz mono 16-bit WAV: ceil(seconds / 10) model windows."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        value = int(12000 * math.sin(2 * math.pi * hz * i / rate))
        frames += value.to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


def cpu_model():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name')} (family {fields.get('cpu family')}, model {fields.get('model')})"


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Daemon:
    def __init__(self, binary, bundle, settings, log):
        args = [binary, "serve", "--bundle", bundle, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            raise RuntimeError(f"daemon did not start: {line!r}; see {log}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        started = time.monotonic()
        while True:
            try:
                if self.request("GET", "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() - started > 1800:
                raise RuntimeError(f"daemon never became ready; see {log}")
            time.sleep(0.5)
        self.ready_seconds = time.monotonic() - started

    def request(self, method, path, body=None, headers=None, timeout=3600):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def metrics(self):
        """Each series summed over its labels (one model here, so that is the model's value); no buckets."""
        values = {}
        for line in self.request("GET", "/metrics", timeout=30)[2].decode().splitlines():
            if line and not line.startswith("#") and "_bucket{" not in line:
                series, _, value = line.rpartition(" ")
                name = series.partition("{")[0]
                values[name] = values.get(name, 0.0) + float(value)
        return values

    def stop(self):
        """SIGTERM, then the drain: the daemon must exit 0 on its own (a hang at exit once held it forever)."""
        self.proc.terminate()
        try:
            status = self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError(f"the daemon did not exit within 600 s of SIGTERM; see {self.log.name}")
        finally:
            self.log.close()
        if status != 0:
            raise RuntimeError(f"the daemon exited {status} after SIGTERM; see {self.log.name}")


def cost_phase(args, bundle):
    """Seconds per row of each kind at batch 1 and batch 4, from the daemon's own batch metrics."""
    n = BATCH
    # max_batch_seconds lifted: batches of N are what is measured here, whatever the learned cost says.
    settings = {"max_batch": n, "max_batch_seconds": 86400, "max_delay_ms": 5, "max_queue": 1000,
                "request_timeout_seconds": 3600, "drain_timeout_seconds": 3600, "blas_threads": args.blas_threads}
    tone = tone_wav(10)
    long_audio = tone_wav(10 * n)
    with open(os.path.join(FIXTURES, "clip.mp4"), "rb") as f:
        mp4 = f.read()
    requests = {  # kind -> {rows: (query, body, content type)}
        "audio": {1: ("modality=audio", tone, "audio/wav"), n: ("modality=audio", long_audio, "audio/wav")},
        "video": {1: ("modality=video&crops=1", mp4, "video/mp4"), n: ("modality=video&crops=4", mp4, "video/mp4")},
        "audiovisual": {1: ("crops=1", mp4, "video/mp4"), n: ("crops=4", mp4, "video/mp4")},
    }
    daemon = Daemon(args.bin, bundle, settings, os.path.join(args.scratch, "cost.log"))
    samples = {kind: {1: [], n: []} for kind in args.kinds}
    try:
        for round_ in range(args.reps):
            for kind in args.kinds:
                order = [1, n] if round_ % 2 == 0 else [n, 1]
                for rows in order:
                    query, body, content_type = requests[kind][rows]
                    before = daemon.metrics()
                    status, _, answer = daemon.request("POST", f"/v1/classify?{query}", body,
                                                       {"Content-Type": content_type})
                    after = daemon.metrics()
                    if status != 200:
                        raise RuntimeError(f"{kind} x{rows}: {status} {answer[:300]!r}")
                    batches = after["avmae_batch_size_count"] - before["avmae_batch_size_count"]
                    batched_rows = after["avmae_batch_size_sum"] - before["avmae_batch_size_sum"]
                    if (batches, batched_rows) != (1, rows):
                        raise RuntimeError(f"{kind} x{rows}: ran as {batches} batches of {batched_rows} rows")
                    seconds = (after["avmae_inference_duration_seconds_sum"]
                               - before["avmae_inference_duration_seconds_sum"])
                    samples[kind][rows].append(seconds / rows)
                    print(f"[cost] round {round_ + 1} {kind} batch {rows}: {seconds / rows:.2f} s/row "
                          f"(load average {load_average():.1f})", file=sys.stderr, flush=True)
    finally:
        daemon.stop()
    table = {}
    for kind, by_rows in samples.items():
        one, many = statistics.median(by_rows[1]), statistics.median(by_rows[n])
        table[kind] = {"seconds_per_row_batch1": round(one, 3), f"seconds_per_row_batch{n}": round(many, 3),
                       "batch1_runs": [round(s, 3) for s in by_rows[1]],
                       f"batch{n}_runs": [round(s, 3) for s in by_rows[n]],
                       "batch_saving": round(1 - many / one, 3),
                       # the same-round ratio, less sensitive to the machine's load drifting between rounds
                       "per_round_ratio": [round(b / a, 3) for a, b in zip(by_rows[1], by_rows[n])]}
    return {"phase": "cost", "batch": n, "settings": settings, "ready_seconds": round(daemon.ready_seconds, 1),
            "rows": table}


def levels_phase(args, bundle):
    with open(args.level_clip, "rb") as f:
        body = f.read()
    path = f"/v1/classify?{args.level_query}" if args.level_query else "/v1/classify"
    settings = {"blas_threads": args.blas_threads}
    settings.update(dict(kv.split("=", 1) for kv in args.set))
    daemon = Daemon(args.bin, bundle, settings, os.path.join(args.scratch, "levels.log"))
    headers = {"Content-Type": args.level_content_type}
    lock = threading.Lock()

    def run(arrivals, seconds, clients=None):
        """Closed loop (clients back to back) when `clients` is set, else open loop at `arrivals` per second."""
        latencies, counts, queue_peak = [], {"ok": 0, "rejected": 0, "other": 0, "timeouts": 0, "errors": 0}, [0.0]
        stop_at = time.monotonic() + seconds

        def one():
            start = time.monotonic()
            try:
                status, response_headers, _ = daemon.request("POST", path, body, headers, timeout=args.client_timeout)
            except TimeoutError:
                key = "timeouts"
            except OSError:
                key = "errors"
            else:
                key = "ok" if status == 200 else "rejected" if status == 503 and "retry-after" in response_headers else "other"
            with lock:
                counts[key] += 1
                if key == "ok":
                    latencies.append(time.monotonic() - start)

        def closed():
            while time.monotonic() < stop_at:
                one()

        def sample_queue():
            while time.monotonic() < stop_at or any(t.is_alive() for t in threads):
                try:
                    queue_peak[0] = max(queue_peak[0], daemon.metrics().get("avmae_queue_estimated_seconds", 0))
                except OSError:
                    pass
                time.sleep(1)

        threads = []
        sampler = threading.Thread(target=sample_queue)
        began = time.monotonic()
        if clients:
            threads = [threading.Thread(target=closed) for _ in range(clients)]
            for t in threads:
                t.start()
        sampler.start()
        if not clients:
            rng = random.Random(1)
            next_at = time.monotonic()
            while next_at < stop_at:
                time.sleep(max(0.0, next_at - time.monotonic()))
                t = threading.Thread(target=one)
                t.start()
                threads.append(t)
                next_at += rng.expovariate(arrivals)
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        sampler.join()
        return {"requests": sum(counts.values()), **counts, "lost": counts["other"] + counts["timeouts"] + counts["errors"],
                "ok_per_second": round(counts["ok"] / wall, 4), "p50_s": round(percentile(latencies, 0.5), 2),
                "p99_s": round(percentile(latencies, 0.99), 2), "max_estimated_wait_s": round(queue_peak[0], 1),
                "load_average_end": load_average()}

    try:
        capacity_run = run(None, args.capacity_seconds, clients=args.capacity_clients)
        capacity = capacity_run["ok_per_second"]
        print(f"[levels] capacity {capacity} clips/s: {capacity_run}", file=sys.stderr, flush=True)
        levels = {}
        for share in args.level_shares:
            levels[f"{round(share * 100)}%"] = result = run(capacity * share, args.level_seconds)
            result["offered_per_second"] = round(capacity * share, 4)
            print(f"[levels] {share:.0%} of capacity: {result}", file=sys.stderr, flush=True)
    finally:
        daemon.stop()
    return {"phase": "levels", "clip": os.path.relpath(args.level_clip, ROOT), "query": args.level_query,
            "settings": settings, "ready_seconds": round(daemon.ready_seconds, 1), "capacity": capacity_run,
            "levels": levels}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("AVMAE_SERVE_BIN", os.path.join(ROOT, ".build/release/avmae-serve")))
    parser.add_argument("--bundle", help="model bundle; default: demo-bundle --size large in --scratch")
    parser.add_argument("--scratch", default=os.path.join(ROOT, ".build", "fullsize"))
    parser.add_argument("--blas-threads", type=int, default=2)
    parser.add_argument("--only", choices=["cost", "levels"], action="append")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["audio", "video", "audiovisual"])
    parser.add_argument("--level-clip", default=os.path.join(FIXTURES, "tone.wav"))
    parser.add_argument("--level-query", default="")
    parser.add_argument("--level-content-type", default="audio/wav")
    parser.add_argument("--capacity-clients", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=60)
    parser.add_argument("--level-seconds", type=float, default=90)
    parser.add_argument("--level-shares", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 1.0, 2.0])
    parser.add_argument("--client-timeout", type=float, default=600)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a daemon setting for levels")
    args = parser.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    bundle = args.bundle
    if bundle is None:
        bundle = os.path.join(args.scratch, "large")
        if not os.path.exists(os.path.join(bundle, "model.safetensors")):
            subprocess.run([args.bin, "demo-bundle", "--size", "large", "--out", bundle], check=True,
                           stdout=subprocess.DEVNULL)
    header = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_start": load_average(),
              "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps({"phase": "machine", **header}), flush=True)
    for phase in args.only or ["cost", "levels"]:
        result = cost_phase(args, bundle) if phase == "cost" else levels_phase(args, bundle)
        result["load_average_end"] = load_average()
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
