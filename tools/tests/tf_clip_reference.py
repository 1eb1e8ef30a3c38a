#!/usr/bin/env python3
"""The TensorFlow half of the clip reference (test_clip_reference.py): model frames and log-mel computed the way
upstream's data pipeline computes them, from pictures and sound that FFmpeg's CLI decoded.

    tf_clip_reference.py JOBS_JSON
    JOBS_JSON: [{"kind": "frames", "input": NPY (n, H, W, 3) uint8, "resize_short": int, "crop": int, "output": NPY},
                {"kind": "log_mel", "input": NPY (B, samples) float32, "frontend": {spec A.1 keys}, "output": NPY}, ...]

Frames follow DMVR's eval path (spec Part B §2; dmvr/processors.py resize_smallest, crop_image): short side to
resize_short with the long side floor(long * resize_short / short), tf.image.resize bilinear without
anti-aliasing (skipped when the size is already right, as resize_smallest does), cast back to uint8 (truncating),
then tf.image.resize_with_crop_or_pad to crop x crop. The log-mel is spec Part A.1 in tf.signal ops. Runs in the
TensorFlow venv; one process does every job because importing TensorFlow is most of the cost.
"""
import functools
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

WINDOWS = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}
# Frames per tf.image.resize call: a 1080p float32 batch of 32 is ~800 MB.
CHUNK = 16


def model_frames(pictures: np.ndarray, resize_short: int, crop: int) -> np.ndarray:
    _, height, width, _ = pictures.shape  # (n, H, W, 3) uint8
    out_h = max(resize_short, height * resize_short // width)
    out_w = max(resize_short, width * resize_short // height)
    outputs = []
    for start in range(0, len(pictures), CHUNK):
        frames = tf.constant(pictures[start:start + CHUNK])
        if (out_h, out_w) != (height, width):
            resized = tf.image.resize(frames, (out_h, out_w), method=tf.image.ResizeMethod.BILINEAR, antialias=False)
            frames = tf.cast(resized, tf.uint8)
        outputs.append(tf.image.resize_with_crop_or_pad(frames, crop, crop).numpy())
    return np.concatenate(outputs)  # (n, crop, crop, 3) uint8


def log_mel(waveforms: np.ndarray, p: dict) -> np.ndarray:
    stft = tf.signal.stft(tf.constant(waveforms, tf.float32), p["frame_length"], p["frame_step"], p["fft_length"],
                          window_fn=functools.partial(WINDOWS[p["window"]], periodic=True), pad_end=p["pad_end"])
    spectrum = tf.abs(stft) if p["spectrum"] == "magnitude" else tf.square(tf.abs(stft))
    weights = tf.signal.linear_to_mel_weight_matrix(p["mel_bins"], p["fft_length"] // 2 + 1, p["sample_rate"],
                                                    p["lower_hz"], p["upper_hz"])
    logs = tf.math.log(tf.matmul(spectrum, weights) + p["log_offset"])
    return ((logs - p["mean"]) / p["std"]).numpy()  # (B, frames, mel_bins) float32


def main() -> None:
    for job in json.load(open(sys.argv[1])):
        data = np.load(job["input"])
        if job["kind"] == "frames":
            result = model_frames(data, job["resize_short"], job["crop"])
        elif job["kind"] == "log_mel":
            result = log_mel(data, job["frontend"])
        else:
            raise SystemExit(f"unknown job kind {job['kind']!r}")
        np.save(job["output"], result)


if __name__ == "__main__":
    main()
