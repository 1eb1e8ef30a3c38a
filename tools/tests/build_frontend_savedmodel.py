#!/usr/bin/env python3
"""Builds a small TF SavedModel whose log-mel frontend has known parameters, for test_inspect_savedmodel.py.

    build_frontend_savedmodel.py JOBS_JSON
    JOBS_JSON: [{"frontend": {spec A.1 keys}, "out": DIR, "mel_variable": bool, "symmetric_window": bool}, ...]

Why: the released SavedModels cannot be downloaded here, so the test builds one the way an exporter would
(tf.signal.stft, linear_to_mel_weight_matrix, log, normalisation, then a stand-in "model" that pools the log-mel
into logits) and checks that inspect_savedmodel.py reads the same numbers back. Runs in the TensorFlow venv; one
process builds every job because importing TensorFlow is most of the cost.
"""
import argparse
import functools
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

WINDOWS = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}


class Frontend(tf.Module):
    def __init__(self, p: dict, mel_variable: bool, symmetric: bool):
        super().__init__()
        self.p = p
        self.window = functools.partial(WINDOWS[p["window"]], periodic=not symmetric)
        self.mel_args = (p["mel_bins"], p["fft_length"] // 2 + 1, p["sample_rate"], p["lower_hz"], p["upper_hz"])
        self.mel = tf.Variable(tf.signal.linear_to_mel_weight_matrix(*self.mel_args)) if mel_variable else None

    def __call__(self, waveform):  # [B, N, 1] float32, as the AV-MAE SavedModels take it
        p = self.p
        stft = tf.signal.stft(tf.squeeze(waveform, -1), p["frame_length"], p["frame_step"], p["fft_length"],
                              window_fn=self.window, pad_end=p["pad_end"])
        spectrum = tf.abs(stft) if p["spectrum"] == "magnitude" else tf.square(tf.abs(stft))
        weights = self.mel if self.mel is not None else tf.signal.linear_to_mel_weight_matrix(*self.mel_args)
        log_mel = tf.math.log(tf.matmul(spectrum, weights) + p["log_offset"])
        if (p["mean"], p["std"]) != (0.0, 1.0):
            log_mel = (log_mel - p["mean"]) / p["std"]
        return {"logits": tf.reduce_mean(log_mel, axis=[1, 2])[:, None] * tf.ones([1, 3])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jobs_json")
    ap.add_argument("--samples", type=int, default=32000)
    args = ap.parse_args()
    for job in json.load(open(args.jobs_json)):
        module = Frontend(job["frontend"], job.get("mel_variable", False), job.get("symmetric_window", False))
        signature = [tf.TensorSpec([None, args.samples, 1], tf.float32, name="waveform")]
        tf.saved_model.save(module, job["out"], signatures=tf.function(module.__call__, input_signature=signature))


if __name__ == "__main__":
    main()
