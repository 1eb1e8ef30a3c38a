#!/usr/bin/env python3
"""Reads the log-mel frontend numbers out of a TF SavedModel and writes them as a bundle `frontend` object.

    inspect_savedmodel.py SAVEDMODEL --out frontend.json   (a directory or the zoo's tf_saved_model.zip;
        [--signature serving_default] [--input NAME]        --out - prints to stdout)

Why: the released AV-MAE SavedModels compute the log-mel inside the graph, and that code is in no repository
(spec Part A.1, B §1). This tool settles the numbers from the graph itself, so the Swift frontend can be given
the exact values in config.json. Needs TensorFlow (tools/setup_tf_venv.sh).

How: the SavedModel is loaded into a TF1 session (variables restored), and the function calls leading to the
RFFT op are inlined into that session graph, so every intermediate tensor can be evaluated:
- fft_length: the RFFT op's fft_length input.
- window: the constant factor of the Mul feeding the RFFT, compared with periodic hann / hamming.
- frame_length, frame_step, pad_end: the framed signal for a ramp waveform (sample values = sample indices).
- spectrum: the matmul input compared with |RFFT| and |RFFT|^2 for a random waveform.
- mel_bins, lower_hz, upper_hz, sample_rate: the [fft_length/2+1, M] mel matrix, fitted with the HTK formula
  (tf.signal.linear_to_mel_weight_matrix) and checked entry by entry.
- log_offset: the constant added before the Log.
- mean, std: the elementwise affine ops (Sub/Add/Mul/RealDiv by scalars) after the Log, composed.
Exit status 2 with a one-line message when the graph does not have that shape.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
tf.get_logger().setLevel("ERROR")
from tensorflow.python.framework import function_def_to_graph  # noqa: E402

CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall"}
MATMUL_OPS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"}
PASS_THROUGH = {"Identity", "Reshape", "ExpandDims", "Squeeze"}
AFFINE_OPS = {"Sub", "Add", "AddV2", "Mul", "RealDiv", "Div"}
SAMPLE_RATES = (16000, 8000, 22050, 24000, 32000, 44100, 48000)
MEL_TOLERANCE = 1e-4  # max |fitted HTK weight - graph weight|; float32 matrices land near 1e-6


class InspectError(Exception):
    """The graph does not contain a frontend this tool recognises; the message says which part."""


def mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def htk_matrix(sample_rate: int, bins: int, mel_bins: int, lower_hz: float, upper_hz: float) -> np.ndarray:
    """spec A.1: W [bins, mel_bins], triangles linear in mel, peak 1, DC row zero."""
    m = mel(np.linspace(0.0, sample_rate / 2.0, bins))
    edges = np.linspace(mel(lower_hz), mel(upper_hz), mel_bins + 2)
    lo, center, hi = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((m[:, None] - lo) / (center - lo), (hi - m[:, None]) / (hi - center)))
    w[0, :] = 0.0
    return w


def snap(hz: float) -> float:
    return float(round(hz)) if abs(hz - round(hz)) < 0.05 else round(hz, 3)


# ---------------------------------------------------------------- graph access


class FrontendGraph:
    """A loaded SavedModel with the calls down to the RFFT inlined, plus evaluation helpers."""

    def __init__(self, path: str, signature: str, input_name: str | None):
        self.graph = tf.Graph()
        self.sess = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            try:
                meta = tf.compat.v1.saved_model.load(self.sess, ["serve"], path)
            except (OSError, RuntimeError, ValueError) as e:
                raise InspectError(f"cannot load SavedModel {path}: {str(e).splitlines()[0]}") from e
        if signature not in meta.signature_def:
            raise InspectError(f"no signature {signature!r}; the SavedModel has {sorted(meta.signature_def)}")
        inputs = meta.signature_def[signature].inputs
        self.input = self._pick_input(inputs, input_name)
        self.library = {f.signature.name: f for f in self.graph.as_graph_def().library.function}
        self._reaches: dict[str, bool] = {}
        self.rfft = self._inline_to_rfft()

    @staticmethod
    def _pick_input(inputs, name):
        if name is not None:
            if name not in inputs:
                raise InspectError(f"no input {name!r}; the signature has {sorted(inputs)}")
            info = inputs[name]
        elif len(inputs) == 1:
            info = next(iter(inputs.values()))
        else:
            audio = [k for k in inputs if any(w in k.lower() for w in ("wav", "audio", "spectrogram"))]
            if len(audio) != 1:
                raise InspectError(f"cannot tell the waveform input among {sorted(inputs)}; pass --input NAME")
            info = inputs[audio[0]]
        dims = [d.size for d in info.tensor_shape.dim]
        return info.name, dims

    def _function_reaches_rfft(self, name: str) -> bool:
        if name not in self._reaches:
            self._reaches[name] = False
            fdef = self.library.get(name)
            self._reaches[name] = fdef is not None and any(
                n.op == "RFFT" or (n.op in self.library and self._function_reaches_rfft(n.op)) or
                ("f" in n.attr and self._function_reaches_rfft(n.attr["f"].func.name)) for n in fdef.node_def)
        return self._reaches[name]

    def _inline_to_rfft(self):
        inlined: set[str] = set()
        for depth in range(16):
            rffts = [op for op in self.graph.get_operations() if op.type == "RFFT"]
            if rffts:
                if len(rffts) > 1:
                    raise InspectError(f"{len(rffts)} RFFT ops in the graph; expected one frontend")
                return rffts[0]
            calls = [op for op in self.graph.get_operations() if op.type in CALL_OPS and op.name not in inlined
                     and self._function_reaches_rfft(op.get_attr("f").name)]
            if not calls:
                raise InspectError("no RFFT op in the graph or its functions (is the frontend outside the model?)")
            call = calls[0]
            inlined.add(call.name)
            fdef = self.library[call.get_attr("f").name]
            input_map = {f"{arg.name}:0": t for arg, t in zip(fdef.signature.input_arg, call.inputs)}
            with self.graph.as_default():  # nested call ops are resolved against this graph's function library
                graph_def, _ = function_def_to_graph.function_def_to_graph_def(fdef)
                tf.graph_util.import_graph_def(graph_def, input_map=input_map, name=f"inlined_{depth}")
        raise InspectError("function calls nested too deeply to reach the RFFT op")

    def probe(self, samples: np.ndarray) -> dict:
        """The feed for a mono waveform, shaped like the signature input ([1, N], [1, N, 1], ...)."""
        dims = self.input[1]
        shape = [1 if i == 0 else (len(samples) if i == 1 else 1) for i in range(len(dims))]
        return {self.input[0]: samples.astype(np.float32).reshape(shape)}

    def probe_length(self) -> int:
        dims = self.input[1]
        return dims[1] if len(dims) > 1 and dims[1] and dims[1] > 0 else 16000

    def constant(self, tensor):
        """The value of a tensor that does not depend on the input, or None."""
        try:
            return self.sess.run(tensor)
        except (tf.errors.InvalidArgumentError, tf.errors.FailedPreconditionError):
            return None

    def run(self, tensors, feed):
        return self.sess.run(tensors, feed)


def consumers_bfs(start, stop_types: set, max_ops: int = 200):
    """First op of a type in stop_types downstream of `start` (a tf.Operation)."""
    queue, seen = [start], {start.name}
    while queue and len(seen) < max_ops:
        op = queue.pop(0)
        for out in op.outputs:
            for consumer in out.consumers():
                if consumer.type in stop_types:
                    return consumer
                if consumer.name not in seen:
                    seen.add(consumer.name)
                    queue.append(consumer)
    return None


# ---------------------------------------------------------------- the numbers


def read_window(g: FrontendGraph):
    windowed = g.rfft.inputs[0].op
    while windowed.type in {"Pad", "PadV2"} | PASS_THROUGH:  # zero padding to fft_length, reshapes
        windowed = windowed.inputs[0].op
    if windowed.type != "Mul":
        raise InspectError(f"the RFFT input is a {windowed.type}, not a windowing Mul (rectangular window?)")
    values = [g.constant(t) for t in windowed.inputs]
    if not any(v is not None and v.ndim == 1 for v in values):
        raise InspectError("no constant window factor in the Mul before the RFFT")
    index = next(i for i, v in enumerate(values) if v is not None and v.ndim == 1)
    window, framed = values[index].astype(np.float64), windowed.inputs[1 - index]
    n = np.arange(len(window))
    shapes = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46)}
    for name, (a, b) in shapes.items():
        if np.max(np.abs(window - (a - b * np.cos(2 * np.pi * n / len(window))))) < 1e-5:
            return name, framed
        if np.max(np.abs(window - (a - b * np.cos(2 * np.pi * n / (len(window) - 1))))) < 1e-5:
            raise InspectError(f"the window is a symmetric {name}; the bundle frontend uses periodic windows")
    raise InspectError(f"the window (length {len(window)}) is neither a periodic hann nor a hamming window")


def read_framing(g: FrontendGraph, framed) -> tuple[int, int, bool]:
    length = g.probe_length()
    frames = g.run(framed, g.probe(np.arange(length, dtype=np.float64)))
    frames = frames.reshape(-1, frames.shape[-2], frames.shape[-1])[0].astype(np.float64)
    count, frame_length = frames.shape
    scale, offset = frames[0, 1] - frames[0, 0], frames[0, 0]
    if scale == 0 or count < 2:
        raise InspectError("cannot follow the waveform to the framed signal (it is not passed through linearly)")
    step = int(round((frames[1, 0] - offset) / scale))
    expect = offset + scale * (np.arange(count)[:, None] * step + np.arange(frame_length)[None, :])
    inside = (np.arange(count)[:, None] * step + np.arange(frame_length)[None, :]) < length
    if np.max(np.abs(frames - expect)[inside]) > 1e-3 * abs(scale) * length:
        raise InspectError("the framed signal is not the waveform cut at a fixed step (resampled or filtered?)")
    if count == math.ceil(length / step):
        pad_end = True
    elif count == 1 + (length - frame_length) // step:
        pad_end = False
    else:
        raise InspectError(f"{count} frames for {length} samples at step {step}: neither pad_end nor valid framing")
    return frame_length, step, pad_end


def read_mel(g: FrontendGraph):
    matmul = consumers_bfs(g.rfft, MATMUL_OPS)
    if matmul is None:
        raise InspectError("no matmul with a mel matrix after the RFFT")
    values = [g.constant(t) for t in matmul.inputs]
    if values[1] is None:
        raise InspectError(f"the second input of {matmul.name} is not a constant mel matrix")
    weights = values[1].astype(np.float64)
    transposed = matmul.get_attr("transpose_b") if matmul.type == "MatMul" else matmul.get_attr("adj_y")
    return matmul, (weights.T if transposed else weights)


def read_spectrum(g: FrontendGraph, matmul) -> str:
    rng = np.random.default_rng(0)
    x, s = g.run([g.rfft.outputs[0], matmul.inputs[0]], g.probe(rng.uniform(-1, 1, g.probe_length())))
    magnitude, s = np.abs(x).astype(np.float64).reshape(-1), s.astype(np.float64).reshape(-1)
    if s.shape != magnitude.shape:
        raise InspectError("the mel matmul input does not have the RFFT's shape")
    for name, ref in (("magnitude", magnitude), ("power", magnitude ** 2)):
        if np.max(np.abs(s - ref)) <= 1e-4 * np.max(np.abs(ref)):
            return name
    raise InspectError("the spectrum fed to the mel matrix is neither |STFT| nor |STFT|^2")


def _fit_edges(weights: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """Least-squares (first edge e0, edge spacing d) in mel for triangles with edges e_j = e0 + j d.

    A weight w on band j's rising slope puts its bin at mel e0 + d (j + w), on the falling slope at
    e0 + d (j + 2 - w). Bins strictly inside a monotonic run classify themselves; the first fit then classifies
    every bin by the fitted band centre, and the fit is repeated."""
    rows, cols = np.nonzero((weights > 1e-3) & (weights < 1 - 1e-3))
    w = weights[rows, cols]
    prev = weights[np.maximum(rows - 1, 0), cols]
    nxt = weights[np.minimum(rows + 1, len(weights) - 1), cols]
    rising = (prev < w) & (w < nxt)
    usable = rising | ((prev > w) & (w > nxt))
    if usable.sum() < 2:
        raise InspectError(f"the {list(weights.shape)} matrix has no triangle slopes; not a mel matrix")
    for _ in range(3):
        pos = np.where(rising, cols + w, cols + 2 - w)
        design = np.stack([np.ones_like(pos), pos], 1)
        (e0, d), *_ = np.linalg.lstsq(design[usable], m[rows][usable], rcond=None)
        rising, usable = m[rows] < e0 + d * (cols + 1), np.ones_like(usable)
    return e0, d


def fit_mel(weights: np.ndarray) -> tuple[int, float, float]:
    bins, mel_bins = weights.shape
    best = None
    for rate in SAMPLE_RATES:
        e0, d = _fit_edges(weights, mel(np.linspace(0.0, rate / 2.0, bins)))
        lower = snap(700.0 * math.expm1(e0 / 1127.0))
        upper = snap(700.0 * math.expm1((e0 + (mel_bins + 1) * d) / 1127.0))
        if not 0 <= lower < upper <= rate / 2 + 1:
            continue
        error = np.max(np.abs(htk_matrix(rate, bins, mel_bins, lower, upper) - weights))
        if best is None or error < best[0]:
            best = (error, rate, lower, upper)
    if best is None or best[0] > MEL_TOLERANCE:
        raise InspectError(f"the [{bins},{mel_bins}] matrix is not an HTK mel matrix (tf.signal) at any common sample "
                           f"rate{'' if best is None else f' (best fit {best[1]} Hz is off by {best[0]:.2g})'}")
    return best[1], best[2], best[3]


def scalar(value, what: str) -> float:
    """A graph constant as the decimal it was written as (float32 0.001 -> 0.001, not 0.0010000000474974513)."""
    flat = np.asarray(value).reshape(-1)
    if flat.size == 0 or np.any(flat != flat[0]):
        raise InspectError(f"{what} is not a single number (per-bin values cannot go in the bundle frontend)")
    return float(str(flat[0]))  # numpy prints the shortest decimal that round-trips in the constant's dtype


def read_log_and_normalisation(g: FrontendGraph, matmul) -> tuple[float, float, float]:
    log = consumers_bfs(matmul, {"Log"})
    if log is None:
        raise InspectError("no Log after the mel matmul")
    before = log.inputs[0].op
    if before.type in ("Maximum",):
        raise InspectError("the log takes max(mel, eps), a floor; the bundle frontend has an additive log_offset only")
    if before.type not in ("Add", "AddV2"):
        raise InspectError(f"the Log input is a {before.type}, not mel + log_offset")
    offsets = [g.constant(t) for t in before.inputs]
    if not any(v is not None for v in offsets):
        raise InspectError("the value added before the Log is not a constant")
    log_offset = scalar(next(v for v in offsets if v is not None), "the log offset")

    a, b, tensor = 1.0, 0.0, log.outputs[0]  # running map: current = a * log + b
    while True:
        users = tensor.consumers()
        if len(users) != 1 or users[0].type not in AFFINE_OPS | PASS_THROUGH:
            break
        op = users[0]
        if op.type in PASS_THROUGH:
            tensor = op.outputs[0]
            continue
        other = [t for t in op.inputs if t is not tensor]
        c = g.constant(other[0]) if len(other) == 1 else None
        if c is None:
            break
        c = scalar(c, f"the constant in {op.type} {op.name}")
        data_first = op.inputs[0] is tensor
        if op.type in ("Add", "AddV2"):
            b += c
        elif op.type == "Sub":
            a, b = (a, b - c) if data_first else (-a, c - b)
        elif op.type == "Mul":
            a, b = a * c, b * c
        elif data_first:  # RealDiv / Div by a constant
            a, b = a / c, b / c
        else:
            break
        tensor = op.outputs[0]
    return log_offset, -b / a, 1.0 / a


def savedmodel_dir(path: str, scratch: str) -> str:
    """The SavedModel directory: PATH itself, or the folder holding saved_model.pb inside a zip."""
    if not zipfile.is_zipfile(path):
        return path
    with zipfile.ZipFile(path) as z:
        z.extractall(scratch)
    for root, _, files in os.walk(scratch):
        if "saved_model.pb" in files:
            return root
    raise InspectError(f"{path} holds no saved_model.pb")


def inspect(path: str, signature: str = "serving_default", input_name: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        return _inspect(savedmodel_dir(path, scratch), signature, input_name)


def _inspect(path: str, signature: str, input_name: str | None) -> dict:
    g = FrontendGraph(path, signature, input_name)
    fft_length = int(np.asarray(g.constant(g.rfft.inputs[1])).reshape(-1)[0])
    window, framed = read_window(g)
    frame_length, frame_step, pad_end = read_framing(g, framed)
    matmul, weights = read_mel(g)
    if weights.shape[0] != fft_length // 2 + 1:
        raise InspectError(f"mel matrix has {weights.shape[0]} rows, expected fft_length/2+1 = {fft_length // 2 + 1}")
    spectrum = read_spectrum(g, matmul)
    sample_rate, lower_hz, upper_hz = fit_mel(weights)
    log_offset, mean, std = read_log_and_normalisation(g, matmul)
    return {"sample_rate": sample_rate, "frame_length": frame_length, "frame_step": frame_step,
            "fft_length": fft_length, "window": window, "pad_end": pad_end, "spectrum": spectrum,
            "mel_bins": int(weights.shape[1]), "lower_hz": lower_hz, "upper_hz": upper_hz,
            "log_offset": log_offset, "mean": float(f"{mean:.9g}"), "std": float(f"{std:.9g}")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="inspect_savedmodel", description=__doc__.split("\n\n")[2])
    p.add_argument("savedmodel", help="SavedModel directory or tf_saved_model.zip")
    p.add_argument("--out", required=True, help="frontend JSON to write, or - for stdout")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--input", help="name of the waveform input in the signature (default: guessed)")
    args = p.parse_args(argv)
    try:
        frontend = inspect(args.savedmodel, args.signature, args.input)
    except InspectError as e:
        sys.stderr.write(f"inspect_savedmodel: error: {e}\n")
        return 2
    text = json.dumps(frontend, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
