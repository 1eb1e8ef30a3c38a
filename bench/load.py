#!/usr/bin/env python3
"""Load test for `avmae-serve serve`: throughput and p50/p99 latency with batching on and off, and the server's
overhead per request next to the model's own time, all measured in the same run on the same machine.

It starts the daemon itself (twice: --max-batch N, then --max-batch 1), on a demo bundle unless --bundle is
given, and drives it with C concurrent keep-alive clients for D seconds each.

  python3 bench/load.py --bin .build/release/avmae-serve --clip Tests/HTTPServerTests/Fixtures/tone.wav

Numbers it prints:
  throughput   requests answered 200 per second
  p50/p99      client-side latency (upload + queue + decode + inference + JSON)
  overhead     at concurrency 1, batching off: client latency minus the server's own decode and inference time
               (timings_ms in each response), i.e. what HTTP, routing, queueing and JSON cost per request;
               shown beside the inference time, which is the direct model call.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Daemon:
    def __init__(self, binary, bundle, settings, models=None):
        """`models`: the arguments naming the models, in place of `--bundle BUNDLE` (e.g. a repository)."""
        args = [binary, "serve", *(models or ["--bundle", bundle]), "--host", "127.0.0.1", "--port", "0",
                "--log-level", "warning"]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            raise RuntimeError(f"daemon did not start: {line!r}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("daemon never became ready")

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def run_load(port, body, content_type, path, clients, seconds):
    """C threads, each with one keep-alive connection, posting back to back for `seconds`."""
    latencies, server_timings, statuses = [], [], {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - start
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    latencies.append(elapsed)
                    server_timings.append(json.loads(payload)["timings_ms"])
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "throughput_rps": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "server_inference_ms_p50": percentile([t["inference"] for t in server_timings], 0.5),
        "server_decode_ms_p50": percentile([t["decode"] for t in server_timings], 0.5),
        "server_queue_ms_p50": percentile([t["queue"] for t in server_timings], 0.5),
        "overhead_ms_p50": percentile([lat * 1e3 - t["inference"] - t["decode"]
                                       for lat, t in zip(latencies, server_timings)], 0.5),
    }


def batch_stats(daemon):
    """Mean batch size and mean model time per batch, from the server's own histograms."""
    text = daemon.get("/metrics")[1].decode()
    values = {}
    names = ("avmae_batch_size_sum", "avmae_batch_size_count", "avmae_inference_duration_seconds_sum",
             "avmae_inference_duration_seconds_count")
    for line in text.splitlines():
        for name in names:
            # Summed over the `model` label.
            if line.startswith(name + " ") or line.startswith(name + "{"):
                values[name] = values.get(name, 0) + float(line.rsplit(" ", 1)[1])
    batches = values.get("avmae_batch_size_count", 0) or float("nan")
    return (values.get("avmae_batch_size_sum", 0) / batches,
            values.get("avmae_inference_duration_seconds_sum", 0) * 1e3 / batches)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("AVMAE_SERVE_BIN", ".build/release/avmae-serve"))
    parser.add_argument("--bundle", help="model bundle; default: a fresh demo bundle")
    parser.add_argument("--demo-width", type=int, default=64, help="demo bundle hidden size (64 = the test model)")
    parser.add_argument("--demo-layers", type=int, default=2)
    parser.add_argument("--blas-threads", type=int, help="the server's blas_threads setting")
    parser.add_argument("--clip", default="Tests/HTTPServerTests/Fixtures/tone.wav")
    parser.add_argument("--content-type", default="audio/wav")
    parser.add_argument("--path", default="/v1/classify")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-delay-ms", type=float, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="avmae-bench-")
    try:
        bundle = args.bundle
        if bundle is None:
            bundle = os.path.join(scratch, "demo")
            subprocess.run([args.bin, "demo-bundle", "--out", bundle, "--width", str(args.demo_width),
                            "--layers", str(args.demo_layers)], check=True, stdout=subprocess.DEVNULL)
        with open(args.clip, "rb") as f:
            body = f.read()
        results = {}
        modes = [("batching_on", {"max_batch": args.max_batch, "max_delay_ms": args.max_delay_ms}),
                 ("batching_off", {"max_batch": 1, "max_delay_ms": 0})]
        for mode, settings in modes:
            settings.update({"max_queue": 4 * args.clients, "http_threads": 2})
            if args.blas_threads:
                settings["blas_threads"] = args.blas_threads
            daemon = Daemon(args.bin, bundle, settings)
            try:
                run_load(daemon.port, body, args.content_type, args.path, 2, 1.0)  # warm connections and caches
                loaded = run_load(daemon.port, body, args.content_type, args.path, args.clients, args.seconds)
                loaded["mean_batch_size"], loaded["model_ms_per_batch"] = batch_stats(daemon)
                results[mode] = loaded
                if mode == "batching_off":
                    results["single_client"] = run_load(daemon.port, body, args.content_type, args.path, 1,
                                                        min(args.seconds, 5))
            finally:
                daemon.stop()
        if args.json:
            print(json.dumps(results, indent=2))
            return
        print(f"clip {args.clip} ({len(body)} bytes) -> {args.path}, {args.clients} clients, {args.seconds:.0f} s each")
        print(f"{'mode':<14}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'mean batch':>12}{'model ms/batch':>16}"
              f"{'errors':>8}")
        for mode in ("batching_on", "batching_off"):
            r = results[mode]
            errors = sum(n for status, n in r["statuses"].items() if status != 200)
            print(f"{mode:<14}{r['throughput_rps']:>9.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
                  f"{r['mean_batch_size']:>12.2f}{r['model_ms_per_batch']:>16.2f}{errors:>8}")
        single = results["single_client"]
        print(f"one client, batching off: latency p50 {single['p50_ms']:.2f} ms = model call (inference) "
              f"{single['server_inference_ms_p50']:.2f} ms + decode {single['server_decode_ms_p50']:.2f} ms "
              f"+ server overhead {single['overhead_ms_p50']:.2f} ms (HTTP, queue, JSON)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
