#!/usr/bin/env python3
"""Two models in one daemon: does a flood for one starve the other, and what does an extra model cost in memory?

It writes two demo bundles of the same shape (different seeds) into a model repository and starts
`avmae-serve serve --model-repository` on them. Then, in the same run:
  alone    client B sends requests for model "b" one after another (nothing else runs)
  flooded  client B does the same while client A keeps --flood requests for model "a" in flight
It prints B's p50/p99 in both phases and the ratio, and how many requests each model answered while flooded.
Memory: the daemon's RSS with one model and with two (two daemon starts, same bundle shape).

  python3 bench/fairness.py --bin .build/release/avmae-serve --clip Tests/HTTPServerTests/Fixtures/tone.wav
"""
import argparse
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time

from load import Daemon, percentile


class Repository(Daemon):
    """A daemon on a model repository folder, with the requests and the memory reading this bench needs."""

    def __init__(self, binary, root, settings):
        super().__init__(binary, None, settings, models=["--model-repository", root])

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "audio/wav"} if body else {})
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def sequential(daemon, model, clip, seconds):
    latencies = []
    end = time.time() + seconds
    while time.time() < end:
        start = time.perf_counter()
        status, _ = daemon.request("POST", f"/v1/classify?model={model}", clip)
        if status == 200:
            latencies.append(time.perf_counter() - start)
    return latencies


def flood(daemon, model, clip, clients, stop, answered):
    def client():
        while not stop.is_set():
            if daemon.request("POST", f"/v1/classify?model={model}", clip)[0] == 200:
                answered.append(1)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release/avmae-serve")
    parser.add_argument("--clip", default="Tests/HTTPServerTests/Fixtures/tone.wav")
    parser.add_argument("--width", type=int, default=256, help="demo bundle hidden size")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--flood", type=int, default=8, help="client A's requests in flight")
    args = parser.parse_args()
    clip = open(args.clip, "rb").read()
    root = tempfile.mkdtemp(prefix="avmae-fairness-")
    try:
        for name, seed in (("a", 1), ("b", 2)):
            subprocess.run([args.bin, "demo-bundle", "--out", os.path.join(root, name), "--width", str(args.width),
                            "--layers", str(args.layers), "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
        settings = {"max_queue": 256, "request_timeout_seconds": 600}
        # Memory: one model, then two, each after the same warm traffic.
        os.rename(os.path.join(root, "b"), os.path.join(root + "-b"))
        one = Repository(args.bin, root, settings)
        sequential(one, "a", clip, 3)
        rss_one = one.rss_mib()
        one.stop()
        os.rename(root + "-b", os.path.join(root, "b"))
        daemon = Repository(args.bin, root, settings)
        sequential(daemon, "a", clip, 3)
        sequential(daemon, "b", clip, 3)
        rss_two = daemon.rss_mib()

        alone = sequential(daemon, "b", clip, args.seconds)
        stop, answered_a = threading.Event(), []
        threads = flood(daemon, "a", clip, args.flood, stop, answered_a)
        time.sleep(2)  # A's queue fills first
        flooded = sequential(daemon, "b", clip, args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        daemon.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root + "-b", ignore_errors=True)

    info = {key.strip(): value.strip() for key, value in
            (line.split(":", 1) for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines() if ":" in line)}
    cpu = f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    print(f"CPU: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; demo bundle width {args.width}, {args.layers} layers; clip {args.clip}")
    for name, values in (("B alone", alone), (f"B beside A's flood of {args.flood}", flooded)):
        print(f"{name:32s} n={len(values):4d}  p50 {percentile(values, 0.5) * 1e3:8.1f} ms"
              f"  p99 {percentile(values, 0.99) * 1e3:8.1f} ms")
    print(f"B p50 flooded/alone: {percentile(flooded, 0.5) / percentile(alone, 0.5):.2f}x"
          f"  (turns batch by batch: at most one of A's batches runs before each of B's)")
    print(f"while flooded: model a answered {len(answered_a)}, model b answered {len(flooded)}")
    print(f"RSS one model {rss_one:.0f} MiB, two models {rss_two:.0f} MiB: extra model {rss_two - rss_one:.0f} MiB")


if __name__ == "__main__":
    main()
