#!/usr/bin/env python3
"""Sends each video shape that used to corrupt the daemon's heap (issue 11) N times, 4 clients at once, and checks
that every request is answered and the daemon is still the same process at the end.

  python3 bench/crash_shapes.py --bin .build/release/avmae-serve [--times 100]
"""
import argparse
import collections
import glob
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Daemon  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "MediaTests", "Fixtures")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--times", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="avmae-crash-shapes-")
    bundle = os.path.join(work, "bundle")
    subprocess.run([args.bin, "demo-bundle", "--out", bundle], check=True, stdout=subprocess.DEVNULL)
    daemon = Daemon(args.bin, bundle, {"max_queue": 256})
    pid = daemon.proc.pid
    files = sorted(glob.glob(os.path.join(FIXTURES, "regress_*")))
    jobs = [(f, i) for f in files for i in range(args.times)]
    statuses = collections.Counter()
    lock = threading.Lock()
    start = time.time()

    def client(part):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
        for path, _ in part:
            body = open(path, "rb").read()
            try:
                conn.request("POST", "/v1/classify?crops=4", body=body, headers={"Content-Type": "video/mp4"})
                response = conn.getresponse()
                response.read()
                key = (os.path.basename(path), response.status)
            except OSError as error:
                conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
                key = (os.path.basename(path), f"connection error: {error}")
            with lock:
                statuses[key] += 1
                done = sum(statuses.values())
                if done % 50 == 0:
                    print(f"  {done}/{len(jobs)} answered, daemon alive: {daemon.proc.poll() is None}", flush=True)

    threads = [threading.Thread(target=client, args=(jobs[i::args.clients],)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alive = daemon.proc.poll() is None
    print(f"{len(jobs)} requests over {len(files)} shapes in {time.time() - start:.0f} s; daemon pid {pid} alive: {alive}")
    for (name, status), count in sorted(statuses.items(), key=str):
        print(f"  {name}: {status} x{count}")
    daemon.stop()
    ok = alive and all(status == 200 for (_, status) in statuses) and sum(statuses.values()) == len(jobs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
