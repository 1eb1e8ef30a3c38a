#!/usr/bin/env python3
"""What /v2 (the Open Inference Protocol, through tritonclient) costs per request next to /v1 for the same clip,
and what raw tensors save by skipping the decoder. One client, requests interleaved round by round
(v1, v2 CLIP, v2 WAVEFORM binary, v2 WAVEFORM JSON), on the demo bundle unless --bundle is given.

  .venv-contract/bin/python bench/v2_latency.py --bin .build/release/avmae-serve [--rounds 40]

(tritonclient and numpy come from Tests/contract/requirements.txt.) Prints per case the median client latency,
the 10th-90th percentile spread, and the ratio of the median to /v1's median measured in the same run.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import tritonclient.http as httpclient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import Daemon  # noqa: E402

TONE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "HTTPServerTests", "Fixtures", "tone.wav")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--bundle")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle
        if bundle is None:
            bundle = os.path.join(scratch, "bundle")
            subprocess.run([args.bin, "demo-bundle", "--out", bundle], check=True, stdout=subprocess.DEVNULL)
        daemon = Daemon(args.bin, bundle, {})
        try:
            report(measure(daemon.port, args.rounds))
        finally:
            daemon.stop()


def measure(port, rounds):
    clip = open(TONE, "rb").read()
    with wave.open(TONE) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    waveform = (samples.astype(np.float32) / 32768.0)[np.newaxis, :]
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=120)
    v1 = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    v1.request("GET", "/v1/models")
    model = json.loads(v1.getresponse().read())["models"][0]["name"]

    def v1_classify():
        v1.request("POST", "/v1/classify?top_k=527", body=clip, headers={"Content-Type": "audio/wav"})
        response = v1.getresponse()
        assert response.status == 200, response.read()
        response.read()

    def v2(name, shape, datatype, data, binary):
        tensor = httpclient.InferInput(name, shape, datatype)
        tensor.set_data_from_numpy(data, binary_data=binary)
        output = httpclient.InferRequestedOutput("PROBABILITIES", binary_data=binary)
        return lambda: client.infer(model, [tensor], outputs=[output]).as_numpy("PROBABILITIES")

    cases = {
        "v1 classify (clip, top_k=527)": v1_classify,
        "v2 CLIP, binary": v2("CLIP", [1], "BYTES", np.array([clip], dtype=np.object_), True),
        "v2 WAVEFORM, binary": v2("WAVEFORM", list(waveform.shape), "FP32", waveform, True),
        "v2 WAVEFORM, JSON": v2("WAVEFORM", list(waveform.shape), "FP32", waveform, False),
    }
    for run in cases.values():  # warm connections and the workspace
        run()
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def report(times):
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in cpu.splitlines() if ":" in line)
    print(f"CPU: {fields.get('Model name', '?').strip()} (family {fields.get('CPU family', '?').strip()} "
          f"model {fields.get('Model', '?').strip()}), {os.cpu_count()} CPUs")
    baseline = statistics.median(next(iter(times.values())))
    print(f"{'case':34} {'median ms':>10} {'p10-p90 ms':>16} {'x v1':>6}")
    for name, values in times.items():
        deciles = statistics.quantiles(values, n=10)
        median = statistics.median(values)
        print(f"{name:34} {median:10.2f} {deciles[0]:7.2f}-{deciles[-1]:<8.2f} {median / baseline:6.2f}")


if __name__ == "__main__":
    main()
