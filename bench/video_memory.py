#!/usr/bin/env python3
"""Peak memory of the daemon for video: one 4-crop request, then a full queue of them.

Starts `avmae-serve serve` on the demo bundle (audio+video MBT, 32 frames per crop), sends a generated 60 s video
(6 windows x 4 crops = 24 frame sets), reads the daemon's peak RSS (VmHWM) before and after, then sends `--queue`
such requests at once and reads it again. Run it against two binaries to compare them in the same sitting:

  python3 bench/video_memory.py --bin .build/release/avmae-serve [--bin OTHER_BINARY]
"""
import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Daemon  # noqa: E402


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def classify(port, body, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/classify?crops=4", body=body, headers={"Content-Type": "video/mp4"})
    response = conn.getresponse()
    response.read()
    results.append(response.status)


def measure(binary, bundle, clip, queue):
    daemon = Daemon(binary, bundle, {"max_queue": max(64, (queue + 1) * 24), "max_video_rows": 256,
                                     "request_timeout_seconds": 900})
    try:
        pid = daemon.proc.pid
        idle = peak_rss_mib(pid)
        results = []
        classify(daemon.port, clip, results)
        one = peak_rss_mib(pid)
        threads = [threading.Thread(target=classify, args=(daemon.port, clip, results)) for _ in range(queue)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        full = peak_rss_mib(pid)
        return idle, one, full, results
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", action="append", required=True, help="avmae-serve binary (repeat to compare)")
    parser.add_argument("--queue", type=int, default=4, help="4-crop requests sent at once for the full-queue figure")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="avmae-video-memory-")
    clip_path = os.path.join(work, "clip.mp4")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25",
                    "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip_path], check=True)
    clip = open(clip_path, "rb").read()
    bundle = os.path.join(work, "bundle")
    subprocess.run([args.bin[0], "demo-bundle", "--out", bundle], check=True, stdout=subprocess.DEVNULL)
    print(f"60 s 640x360 video, crops=4 (24 frame sets of 32 frames), queue of {args.queue}; peak RSS in MiB")
    print("| binary | idle | after one request | after the queue | statuses |")
    print("| --- | ---: | ---: | ---: | --- |")
    for binary in args.bin:
        idle, one, full, statuses = measure(binary, bundle, clip, args.queue)
        counts = {status: statuses.count(status) for status in sorted(set(statuses))}
        print(f"| {binary} | {idle:.0f} | {one:.0f} | {full:.0f} | {counts} |")


if __name__ == "__main__":
    main()
