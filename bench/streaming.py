#!/usr/bin/env python3
"""Streaming bench for `avmae-serve serve`: an hour-long recording streamed as NDJSON (?stream=true) beside short
requests, against the same short requests alone, measured in the same run with the same daemon.

It starts the daemon once (a demo bundle of the given size unless --bundle is given), writes a 1-hour recording
with the ffmpeg CLI (sound, or with --format mp4 a 320x240 H.264 video with that sound), then alternates two
phases --rounds times:
  alone    one client (or --short-clients N) posts the short clip back to back for as long as the stream phase took
  beside   the same clients, while another one streams the hour (upload, then one line per window)

Numbers it prints (medians over rounds, with min..max):
  short p50/p99 ms     client-side latency of the short requests, alone and beside the stream, and their ratio
  first line ms        from the last byte of the stream's upload to its first NDJSON line
  stream s             from the end of the upload to the summary line
  peak RSS MiB         resident memory of the daemon and its decode workers, sampled every 20 ms during the
                       stream, next to the same before it started

  python3 bench/streaming.py --bin .build/release/avmae-serve --demo-width 384 --demo-layers 6
  python3 bench/streaming.py --format mp4 --seconds 600 --stream-query 'top_k=1&crops=4'
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from load import Daemon, percentile


def tree_rss(pid):
    """VmRSS of a process and all its descendants, in bytes."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(tree_rss(int(child)) for child in f.read().split())
    except OSError:
        pass
    return total


def stream(port, path, recording, content_type):
    """Posts the recording and reads the chunked NDJSON answer; times are from the end of the upload."""
    size = os.path.getsize(recording)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n".encode())
    with open(recording, "rb") as f:
        while chunk := f.read(1 << 20):
            sock.sendall(chunk)
    upload_end = time.perf_counter()
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    while reader.readline() not in (b"\r\n", b""):
        pass
    lines, first, pending = [], None, b""
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            break
        pending += reader.read(size + 2)[:size]
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            lines.append(json.loads(line))
            if first is None:
                first = time.perf_counter() - upload_end
    sock.close()
    return {"status": status, "lines": len(lines), "first_line_ms": first * 1e3,
            "stream_s": time.perf_counter() - upload_end, "last": lines[-1] if lines else None}


def short_requests(port, body, content_type, stop):
    latencies, statuses = [], {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    while not stop.is_set():
        start = time.perf_counter()
        conn.request("POST", "/v1/classify", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 200:
            latencies.append(time.perf_counter() - start)
    conn.close()
    return latencies, statuses


def many_short_requests(port, body, content_type, stop, clients):
    """`clients` clients posting back to back; their latencies together, and the statuses summed."""
    results = [None] * clients

    def client(i):
        results[i] = short_requests(port, body, content_type, stop)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies, statuses = [], {}
    for lat, st in results:
        latencies += lat
        for code, n in st.items():
            statuses[code] = statuses.get(code, 0) + n
    return latencies, statuses


def run_short(port, body, content_type, seconds, clients=1):
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(zip(("lat", "st"), many_short_requests(
        port, body, content_type, stop, clients))))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return result["lat"], result["st"]


def run_beside(daemon, body, content_type, recording, recording_type, query, clients):
    stop = threading.Event()
    result, streamed = {}, {}
    peak = [0]
    before = tree_rss(daemon.proc.pid)

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(daemon.proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    shorts = threading.Thread(target=lambda: result.update(zip(("lat", "st"), many_short_requests(
        daemon.port, body, content_type, stop, clients))))
    sampler.start()
    shorts.start()
    began = time.perf_counter()
    streamed.update(stream(daemon.port, f"/v1/classify?stream=true&{query}", recording, recording_type))
    took = time.perf_counter() - began
    stop.set()
    shorts.join()
    sampler.join()
    streamed.update(rss_before=before, rss_peak=peak[0])
    return result["lat"], result["st"], streamed, took


def summary(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}..{max(values):.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("AVMAE_SERVE_BIN", ".build/release/avmae-serve"))
    parser.add_argument("--bundle", help="model bundle; default: a fresh demo bundle")
    parser.add_argument("--demo-width", type=int, default=64)
    parser.add_argument("--demo-layers", type=int, default=2)
    parser.add_argument("--clip", default="Tests/HTTPServerTests/Fixtures/tone.wav")
    parser.add_argument("--seconds", type=int, default=3600, help="length of the streamed recording")
    parser.add_argument("--format", default="flac", choices=["flac", "wav", "mp3", "mp4"])
    parser.add_argument("--stream-query", default="top_k=1", help="query of the streamed request, after stream=true")
    parser.add_argument("--short-clients", type=int, default=1, help="clients posting the short clip back to back")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="extra daemon setting KEY=VALUE")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="avmae-streaming-bench-")
    try:
        bundle = args.bundle
        if not bundle:
            bundle = os.path.join(scratch, "bundle")
            subprocess.run([args.bin, "demo-bundle", "--out", bundle, "--width", str(args.demo_width),
                            "--layers", str(args.demo_layers)], check=True, stdout=subprocess.DEVNULL)
        recording = os.path.join(scratch, f"hour.{args.format}")
        # A tone that steps up every minute, 16 kHz mono: the decoder resamples nothing, the model sees change.
        expression = "0.25*sin(2*PI*t*220*(1+mod(floor(t/60)\\,8)))"
        sound = ["-f", "lavfi", "-i", f"aevalsrc={expression}:s=16000:d={args.seconds}"]
        pictures, encode = [], []
        if args.format == "mp4":
            # A camera-like stream: a keyframe every 10 s, so a window's frames need a seek and up to 10 s of decoding.
            pictures = ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={args.seconds}"]
            encode = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "35", "-g", "250", "-pix_fmt", "yuv420p",
                      "-c:a", "aac", "-b:a", "32k", "-shortest"]
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *sound, *pictures, "-ac", "1", *encode, recording], check=True)
        recording_type = {"flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg", "mp4": "video/mp4"}[args.format]
        settings = dict(item.split("=", 1) for item in args.set)
        settings.setdefault("stream_spool_bytes", str(8 << 20))
        daemon = Daemon(args.bin, bundle, settings)
        with open(args.clip, "rb") as f:
            body = f.read()
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in lscpu.splitlines() if ":" in l)}
        print(f"CPU: {cpu.get('Model name')} (family {cpu.get('CPU family')} model {cpu.get('Model')}), "
              f"{os.cpu_count()} cores; recording {args.seconds} s {args.format}, {os.path.getsize(recording) >> 20} MiB; "
              f"settings {settings}")
        try:
            run_short(daemon.port, body, "audio/wav", 3)  # warm the connection path and the model
            alone_p50, alone_p99, beside_p50, beside_p99, firsts, streams, peaks, befores = ([] for _ in range(8))
            for round_ in range(args.rounds):
                lat, st, streamed, took = run_beside(daemon, body, "audio/wav", recording, recording_type, args.stream_query,
                                                     args.short_clients)
                beside_p50.append(percentile(lat, 0.5) * 1e3)
                beside_p99.append(percentile(lat, 0.99) * 1e3)
                firsts.append(streamed["first_line_ms"])
                streams.append(streamed["stream_s"])
                peaks.append(streamed["rss_peak"] / 2**20)
                befores.append(streamed["rss_before"] / 2**20)
                print(f"round {round_} beside: {len(lat)} short ({st}), p50 {beside_p50[-1]:.1f} p99 {beside_p99[-1]:.1f} ms; "
                      f"stream {streamed['status']} {streamed['lines']} lines, first line {firsts[-1]:.1f} ms, "
                      f"{streams[-1]:.1f} s, RSS {befores[-1]:.0f} -> peak {peaks[-1]:.0f} MiB; last line "
                      f"{json.dumps(streamed['last'])[:120]}")
                lat, st = run_short(daemon.port, body, "audio/wav", took, args.short_clients)
                alone_p50.append(percentile(lat, 0.5) * 1e3)
                alone_p99.append(percentile(lat, 0.99) * 1e3)
                print(f"round {round_} alone:  {len(lat)} short ({st}), p50 {alone_p50[-1]:.1f} p99 {alone_p99[-1]:.1f} ms")
            print(f"short p50 ms: alone {summary(alone_p50)}, beside the stream {summary(beside_p50)}")
            print(f"short p99 ms: alone {summary(alone_p99)}, beside the stream {summary(beside_p99)}; ratio "
                  f"{statistics.median(beside_p99) / statistics.median(alone_p99):.2f}")
            print(f"first line ms after the upload: {summary(firsts)}; whole stream s: {summary(streams)}")
            print(f"RSS MiB (daemon + workers): before {summary(befores)}, peak during the stream {summary(peaks)}")
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
