#!/usr/bin/env python3
"""Offline bulk path against the server path on the same clips: files per second of `avmae-serve embed FOLDER`
and of the same clips POSTed concurrently to a running `avmae-serve serve` (same bundle, same settings, so the
same decoder, batcher and model), measured in the same run, interleaved (bulk, server, bulk, server, ...).

  python3 bench/bulk.py --bin .build/release/avmae-serve [--clips 200] [--rounds 3] [--clip-seconds 3]

The clips are generated once with ffmpeg (not committed): MP4s of --clip-seconds (3; 10 is an AudioSet/VGGSound
clip, and about 4x the decode cost) at --clip-size (160x120), H.264 (testsrc2, a different hue per clip) with an
AAC track of a different tone per clip.

Numbers it prints, per round and as median [min-max]:
  bulk         files/s of the run itself (the summary's files_per_second: first file to last line fsynced)
  bulk+start   files/s over the whole process, model load and warm-up included
  server       files/s from the first POST to the last answer, C concurrent keep-alive clients, daemon warm;
               a 503 (overloaded, deadline) is resent after its Retry-After, and counted
  ratio        bulk / server (median of the per-round ratios)
"""
import argparse
import http.client
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Daemon  # noqa: E402  (the same daemon start-up and readiness wait as the load test)


def make_clips(folder, count, seconds, size):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        path = os.path.join(folder, f"clip-{i:04d}.mp4")
        if os.path.exists(path):
            continue
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds},hue=h={7 * i % 360}",
             "-f", "lavfi", "-i", f"sine=frequency={200 + 7 * i}:sample_rate=44100:duration={seconds}",
             "-t", f"{seconds}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25",
             "-c:a", "aac", "-b:a", "64k", path],
            check=True)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".mp4"))


def run_bulk(binary, bundle, folder, settings):
    output = tempfile.mkdtemp(prefix="avmae-bulk-out-")
    args = [binary, "embed", folder, "--output", output, "--bundle", bundle, "--log-level", "warning"]
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    start = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    shutil.rmtree(output, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"bulk run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    files = summary["ok"] + summary["failed"]
    if summary["failed"]:
        raise RuntimeError(f"bulk run had {summary['failed']} failures")
    return summary["files_per_second"], files / wall


def run_server(daemon, files, clients):
    """Every file POSTed once to /v1/embed by `clients` threads with keep-alive connections."""
    work = queue.Queue()
    for path in files:
        work.put(path)
    failures, retries = [], []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
        while True:
            try:
                path = work.get_nowait()
            except queue.Empty:
                return
            with open(path, "rb") as f:
                body = f.read()
            while True:
                conn.request("POST", "/v1/embed", body=body, headers={"Content-Type": "video/mp4"})
                response = conn.getresponse()
                response.read()
                if response.status != 503:
                    break
                # Overloaded or past its deadline: what a well-behaved client does, wait as told and resend.
                retries.append(path)
                time.sleep(float(response.getheader("Retry-After", "1")))
            if response.status != 200:
                failures.append((path, response.status))

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"server answered {len(failures)} requests with errors, e.g. {failures[:3]}")
    return len(files) / seconds, len(retries)


def spread(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("AVMAE_SERVE_BIN", ".build/release/avmae-serve"))
    parser.add_argument("--bundle", help="model bundle; default: a fresh demo bundle")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--clip-seconds", type=float, default=3)
    parser.add_argument("--clip-size", default="160x120")
    parser.add_argument("--folder", help="where the generated clips are kept between runs (default: under /tmp)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients on the server path")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for both paths (e.g. max_batch=8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    binary = os.path.abspath(args.bin)
    settings = dict(item.split("=", 1) for item in args.set)
    folder = args.folder or os.path.join(tempfile.gettempdir(),
                                         f"avmae-bulk-bench-clips-{args.clip_seconds:g}s-{args.clip_size}")
    files = make_clips(folder, args.clips, args.clip_seconds, args.clip_size)[: args.clips]
    scratch = tempfile.mkdtemp(prefix="avmae-bulk-bench-")
    bundle = args.bundle
    if bundle is None:
        bundle = os.path.join(scratch, "bundle")
        subprocess.run([binary, "demo-bundle", "--out", bundle, "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
    # Bulk takes a folder; give it exactly the clips the server gets.
    linked = os.path.join(scratch, "clips")
    os.makedirs(linked)
    for path in files:
        os.symlink(path, os.path.join(linked, os.path.basename(path)))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")

    bulk, bulk_wall, server, ratios, resends = [], [], [], [], []
    try:
        for round_ in range(args.rounds):
            rate, wall_rate = run_bulk(binary, bundle, linked, settings)
            daemon = Daemon(binary, bundle, settings)
            try:
                served, resent = run_server(daemon, files, args.clients)
            finally:
                daemon.stop()
            bulk.append(rate)
            bulk_wall.append(wall_rate)
            server.append(served)
            resends.append(resent)
            ratios.append(rate / served)
            if not args.json:
                print(f"round {round_ + 1}: bulk {rate:.2f} files/s (with start-up {wall_rate:.2f}), "
                      f"server {served:.2f} files/s ({resent} resent after 503), ratio {rate / served:.2f}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    report = {"cpu": cpu, "clips": len(files), "clip_seconds": args.clip_seconds, "clip_size": args.clip_size,
              "rounds": args.rounds, "clients": args.clients, "settings": settings,
              "bulk_files_per_second": bulk, "bulk_with_startup_files_per_second": bulk_wall,
              "server_files_per_second": server, "server_resent_after_503": resends, "ratio": ratios}
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return
    print(f"CPU: {cpu}; {len(files)} clips ({args.clip_seconds:g} s, {args.clip_size} H.264 + AAC); "
          f"{args.clients} HTTP clients")
    print(f"bulk        {spread(bulk)} files/s")
    print(f"bulk+start  {spread(bulk_wall)} files/s")
    print(f"server      {spread(server)} files/s")
    print(f"ratio       {spread(ratios)} (bulk / server, per round)")


if __name__ == "__main__":
    main()
