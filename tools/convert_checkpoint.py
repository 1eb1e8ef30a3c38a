#!/usr/bin/env python3
"""Converts a released AV-MAE Scenic/Flax checkpoint into an avmae-serve model bundle (models/README.md).

    convert_checkpoint.py CHECKPOINT --out DIR [--labels CSV | --placeholder-labels] [--label-set audioset|vggsound]
        [--frontend JSON | --frontend-from-savedmodel DIR] [--name NAME] [--fusion-layer N]
        [--clip-seconds S] [--frames N] [--stride N] [--resize-short N] [--force]

Why a converter: the server reads one simple, checked format (float32 safetensors with the upstream Flax names,
plus config.json and labels.csv) instead of every checkpoint layout upstream has used. The converter accepts
both the optax-era (`params/...`) and flax.optim-era (`optimizer/target/[params/]...`) layouts and both stem
spellings, detects the model from its tensors (tools/architecture.py), drops the pretraining decoder and the
optimizer state, and streams the arrays (tools/flax_msgpack.py) so a 1.2 GB checkpoint converts in bounded
memory. It needs numpy, msgpack and safetensors only.

Exit status 0 on success; 2 with a one-line `convert_checkpoint: error: ...` message when the input cannot be
converted (not msgpack, unknown layout, missing tensors, inconsistent shapes, wrong label count, bad options).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from architecture import Architecture, ArchitectureError, detect  # noqa: E402
from flax_msgpack import ArrayRef, ChunkedArrayRef, CheckpointFormatError, scan, stream  # noqa: E402

FORMAT_VERSION = 1
LABEL_SETS = {527: "audioset", 309: "vggsound"}
CLIP_SECONDS = {"audioset": 10.0, "vggsound": 8.0}
FUSION_LAYER = {527: 18, 309: 16}  # the released finetune configs (spec A.2)
VIDEO = {"finetuned": (32, 2, 256), "pretrained": (16, 4, 224)}  # frames, stride, resize_short (spec A.4)
FPS = 25
FRONTEND_TYPES = {
    "sample_rate": int, "frame_length": int, "frame_step": int, "fft_length": int, "window": str,
    "pad_end": bool, "spectrum": str, "mel_bins": int, "lower_hz": float, "upper_hz": float,
    "log_offset": float, "mean": float, "std": float,
}
FRONTEND_CHOICES = {"window": ("hann", "hamming"), "spectrum": ("magnitude", "power")}
FRONTEND_DEFAULT = {  # spec Part A.1, the best current guess until a SavedModel is inspected
    "sample_rate": 16000, "frame_length": 400, "frame_step": 160, "fft_length": 512, "window": "hamming",
    "pad_end": True, "spectrum": "magnitude", "mel_bins": 128, "lower_hz": 125.0, "upper_hz": 7500.0,
    "log_offset": 0.001, "mean": 0.0, "std": 1.0,
}
AUDIOSET_FINETUNED_NORM = {"mean": 1.102, "std": 2.762}
LABELS_HEADER = ["index", "mid", "display_name"]
DTYPE_TO_F32 = {"float32", "float16", "float64", "bfloat16"}


class ConversionError(Exception):
    """Anything that makes the checkpoint unconvertible; the message says what and how to fix it."""


# ---------------------------------------------------------------- checkpoint tree


def find_params(tree: dict) -> tuple[str, dict]:
    """Returns (layout name, parameter subtree) for the layouts Scenic has written."""
    if isinstance(tree.get("params"), dict):
        layout, params = "params", tree["params"]
    elif isinstance(tree.get("optimizer"), dict) and isinstance(tree["optimizer"].get("target"), dict):
        layout, params = "optimizer/target", tree["optimizer"]["target"]
    else:
        raise ConversionError("unknown layout: top-level keys are [" + ", ".join(sorted(map(str, tree))) +
                              "]; expected 'params' (optax TrainState) or 'optimizer/target' (flax.optim)")
    while set(params) == {"params"} and isinstance(params["params"], dict):  # the optional extra level
        layout, params = layout + "/params", params["params"]
    return layout, params


def flatten(node: dict, prefix: str = "") -> dict[str, ArrayRef | ChunkedArrayRef]:
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, (ArrayRef, ChunkedArrayRef)):
            if value.dtype not in DTYPE_TO_F32:
                raise ConversionError(f"tensor {name} has dtype {value.dtype}; expected a float type")
            out[name] = value
        else:
            raise ConversionError(f"parameter {name} is not an array ({type(value).__name__})")
    return out


def to_float32(raw: bytes, dtype: str) -> bytes:
    if dtype == "float32":
        return raw
    if dtype == "bfloat16":
        return (np.frombuffer(raw, "<u2").astype("<u4") << 16).tobytes()
    return np.frombuffer(raw, "<f8" if dtype == "float64" else "<f2").astype("<f4").tobytes()


# ---------------------------------------------------------------- progress


class ProgressBar:
    """A plain-text progress line on stderr (redrawn with \\r, at most ~10 times a second)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self._last, self._start = label, enabled, 0.0, time.monotonic()
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or self._finished or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label:<6} [{bar:<30}] {frac * 100:5.1f}% "
                         f"{done / 1e6:8.1f}/{total / 1e6:.1f} MB {now - self._start:6.1f} s")
        if done >= total:
            self._finished = True
            sys.stderr.write("\n")
        sys.stderr.flush()


# ---------------------------------------------------------------- safetensors writer


def write_safetensors(path: Path, checkpoint: str, tensors: dict[str, ArrayRef | ChunkedArrayRef],
                      metadata: dict[str, str], progress: ProgressBar) -> None:
    """Writes float32 safetensors without holding the model: header first, then each array at its offset."""
    header: dict = {"__metadata__": metadata}
    sinks, offset = {}, 0
    out = open(path, "wb")

    def sink_at(position: int, dtype: str):
        def sink(raw: bytes) -> None:
            out.seek(position)
            out.write(to_float32(raw, dtype))
        return sink

    placements = []
    for name in sorted(tensors):
        ref = tensors[name]
        count = int(np.prod(ref.shape, dtype=np.int64))
        header[name] = {"dtype": "F32", "shape": list(ref.shape), "data_offsets": [offset, offset + 4 * count]}
        chunk_start = offset
        for chunk in (ref.chunks if isinstance(ref, ChunkedArrayRef) else (ref,)):
            placements.append((chunk.seq, chunk_start, chunk.dtype))
            chunk_start += 4 * int(np.prod(chunk.shape, dtype=np.int64))
        offset += 4 * count
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    base = 8 + len(blob)
    for seq, position, dtype in placements:
        sinks[seq] = sink_at(base + position, dtype)
    with out:
        out.write(struct.pack("<Q", len(blob)) + blob)
        out.truncate(base + offset)
        stream(checkpoint, sinks, progress)


def verify_bundle_tensors(path: Path, tensors: dict) -> None:
    with safe_open(str(path), framework="numpy") as f:
        names = set(f.keys())
        if names != set(tensors):
            raise ConversionError(f"written {path} does not hold the expected tensors")
        for name in names:
            if tuple(f.get_slice(name).get_shape()) != tuple(tensors[name].shape):
                raise ConversionError(f"written {path}: {name} has the wrong shape")


# ---------------------------------------------------------------- config parts


def validate_frontend(values: dict, source: str) -> dict:
    out = {}
    for key, typ in FRONTEND_TYPES.items():
        value = values[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ConversionError(f"{source}: frontend key {key} must be {typ.__name__}, got {value!r}")
        if key in FRONTEND_CHOICES and value not in FRONTEND_CHOICES[key]:
            raise ConversionError(f"{source}: frontend key {key} must be one of {FRONTEND_CHOICES[key]}")
        out[key] = value
    if out["std"] <= 0 or out["frame_length"] > out["fft_length"] or not 0 <= out["lower_hz"] < out["upper_hz"]:
        raise ConversionError(f"{source}: frontend numbers are inconsistent (std > 0, frame_length <= fft_length, "
                              "0 <= lower_hz < upper_hz)")
    return out


def frontend_from_savedmodel(savedmodel: str) -> dict:
    """Runs tools/inspect_savedmodel.py in the TensorFlow venv (TF is not a converter dependency)."""
    tool = Path(__file__).resolve().parent / "inspect_savedmodel.py"
    repo_venv = Path(__file__).resolve().parent.parent / ".venv-tf" / "bin" / "python"
    python = os.environ.get("AVMAE_TF_PYTHON") or (str(repo_venv) if repo_venv.exists() else sys.executable)
    result = subprocess.run([python, str(tool), savedmodel, "--out", "-"], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConversionError(f"inspect_savedmodel.py failed on {savedmodel}: "
                              f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no output'}")
    return json.loads(result.stdout)


def build_frontend(args, kind: str, label_set: str) -> dict:
    values = dict(FRONTEND_DEFAULT)
    if kind == "finetuned" and label_set == "audioset":
        values.update(AUDIOSET_FINETUNED_NORM)
    if args.frontend:
        try:
            given = json.loads(Path(args.frontend).read_text())
        except (OSError, ValueError) as e:
            raise ConversionError(f"cannot read --frontend {args.frontend}: {e}") from e
        values.update({k: v for k, v in given.items() if k in FRONTEND_TYPES})
        source = args.frontend
    elif args.frontend_from_savedmodel:
        values.update(frontend_from_savedmodel(args.frontend_from_savedmodel))
        source = args.frontend_from_savedmodel
    else:
        source = "defaults"
    return validate_frontend(values, source)


def read_labels(path: str, classes: int) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise ConversionError(f"cannot read --labels {path}: {e}") from e
    if not rows or [c.strip() for c in rows[0]] != LABELS_HEADER:
        raise ConversionError(f"--labels {path}: first row must be the header index,mid,display_name")
    body = [r for r in rows[1:] if r]
    for i, row in enumerate(body):
        if len(row) != 3 or row[0].strip() != str(i):
            raise ConversionError(f"--labels {path}: row {i + 2} must be '{i},<mid>,<display_name>', got {row}")
    if len(body) != classes:
        raise ConversionError(f"--labels {path} has {len(body)} labels but the classifier has {classes} classes")
    return [[str(i), r[1], r[2]] for i, r in enumerate(body)]


def build_labels(args, arch: Architecture) -> tuple[list[list[str]], bool]:
    if arch.kind == "pretrained":
        if args.labels:
            raise ConversionError("--labels given, but a pretrained encoder has no classifier")
        return [], False
    if args.labels:
        return read_labels(args.labels, arch.num_classes), False
    if args.placeholder_labels:
        return [[str(i), f"placeholder/{i:03d}", f"class_{i:03d}"] for i in range(arch.num_classes)], True
    raise ConversionError(f"--labels CSV is required for a {arch.num_classes}-class model (see models/labels/"
                          "README.md), or pass --placeholder-labels to write class_NNN names")


def build_config(args, arch: Architecture, checkpoint: str) -> dict:
    dataset = args.label_set or LABEL_SETS.get(arch.num_classes)
    if dataset is None:
        if arch.kind == "finetuned":
            raise ConversionError(f"cannot tell the label set of a {arch.num_classes}-class head; "
                                  "pass --label-set audioset|vggsound")
        raise ConversionError("a pretrained encoder does not say which dataset it was trained on; "
                              "pass --label-set audioset|vggsound (sets clip_seconds)")
    if arch.kind == "finetuned" and args.label_set and LABEL_SETS.get(arch.num_classes, dataset) != dataset:
        raise ConversionError(f"--label-set {dataset} does not match the {arch.num_classes}-class head")
    fusion_layer = 0
    if arch.encoder == "mbt" and len(arch.modalities) == 2:
        fusion_layer = args.fusion_layer if args.fusion_layer is not None else FUSION_LAYER.get(arch.num_classes)
        if fusion_layer is None:
            raise ConversionError(f"fusion_layer is not recoverable from weights and has no default for a "
                                  f"{arch.num_classes}-class head; pass --fusion-layer N")
        if not 0 <= fusion_layer <= arch.num_layers:
            raise ConversionError(f"--fusion-layer {fusion_layer} is outside 0..{arch.num_layers}")
    frames, stride, resize_short = VIDEO[arch.kind]
    clip_seconds = args.clip_seconds if args.clip_seconds is not None else CLIP_SECONDS[dataset]
    frontend = build_frontend(args, arch.kind, dataset)
    if clip_seconds <= 0 or clip_seconds * frontend["sample_rate"] / frontend["frame_step"] < 16:
        raise ConversionError(f"--clip-seconds {clip_seconds} gives fewer than 16 spectrogram frames")
    name = args.name or (Path(checkpoint).parent.name if Path(checkpoint).name == "checkpoint"
                         else Path(checkpoint).name.split(".")[0])
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "kind": arch.kind,
        "encoder": arch.encoder,
        "modalities": arch.modalities,
        "hidden_size": arch.hidden_size,
        "num_heads": arch.num_heads,
        "mlp_dim": arch.mlp_dim,
        "num_layers": arch.num_layers,
        "joint_layers": arch.joint_layers,
        "fusion_layer": fusion_layer,
        "bottlenecks": arch.bottlenecks,
        "num_classes": arch.num_classes,
        "label_set": dataset if arch.kind == "finetuned" else "none",
        "dataset": dataset,
        "clip_seconds": float(clip_seconds),
        "frames": args.frames if args.frames is not None else frames,
        "stride": args.stride if args.stride is not None else stride,
        "fps": FPS,
        "resize_short": args.resize_short if args.resize_short is not None else resize_short,
        "frontend": frontend,
    }


# ---------------------------------------------------------------- main


def convert(args) -> dict:
    checkpoint, out = args.checkpoint, Path(args.out)
    if not os.path.exists(checkpoint):
        raise ConversionError(f"{checkpoint} does not exist")
    if (out / "config.json").exists() and not args.force:
        raise ConversionError(f"{out} already holds a bundle; pass --force to overwrite it")
    show = not args.quiet
    tree = scan(checkpoint, ProgressBar("scan", show))
    layout, params = find_params(tree)
    refs = flatten(params)
    arch = detect({name: ref.shape for name, ref in refs.items()})
    config = build_config(args, arch, checkpoint)
    labels, placeholder = build_labels(args, arch)
    if placeholder:
        config["placeholder_labels"] = True
    tensors = {arch.renames.get(n, n): ref for n, ref in refs.items() if n not in arch.dropped}

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        metadata = {"source": os.path.basename(checkpoint), "layout": layout, "converter": "tools/convert_checkpoint.py"}
        write_safetensors(staging / "model.safetensors", checkpoint, tensors, metadata, ProgressBar("write", show))
        verify_bundle_tensors(staging / "model.safetensors", tensors)
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        with open(staging / "labels.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(LABELS_HEADER)
            writer.writerows(labels)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if show:
        sys.stderr.write(f"convert_checkpoint: {layout} layout, {arch.kind} {arch.encoder} "
                         f"{'+'.join(arch.modalities)}, {len(tensors)} tensors kept, {len(arch.dropped)} dropped"
                         f"{', stems renamed' if arch.renames else ''} -> {out}\n")
    return config


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="convert_checkpoint", description=__doc__.split("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="legacy Flax msgpack checkpoint file (the zoo's <dir>/checkpoint)")
    p.add_argument("--out", required=True, help="bundle directory to write")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--labels", help="index,mid,display_name CSV with one row per class")
    labels.add_argument("--placeholder-labels", action="store_true",
                        help="write class_NNN names (marked placeholder_labels in config.json)")
    p.add_argument("--label-set", choices=sorted(CLIP_SECONDS), help="dataset (default: from the head width)")
    frontend = p.add_mutually_exclusive_group()
    frontend.add_argument("--frontend", help="JSON with frontend keys (spec A.1); other keys are ignored")
    frontend.add_argument("--frontend-from-savedmodel", metavar="DIR",
                          help="read the frontend from a TF SavedModel (runs inspect_savedmodel.py)")
    p.add_argument("--name", help="bundle name (default: from the checkpoint path)")
    p.add_argument("--fusion-layer", type=int, help="first MBT layer with bottleneck fusion (default 18/16)")
    p.add_argument("--clip-seconds", type=float, help="model window in seconds (default 10 AudioSet, 8 VGGSound)")
    p.add_argument("--frames", type=int, help="video frames per window (default 32 finetuned, 16 pretrained)")
    p.add_argument("--stride", type=int, help="source-frame spacing (default 2 finetuned, 4 pretrained)")
    p.add_argument("--resize-short", type=int, help="short side before the 224 crop (default 256 / 224)")
    p.add_argument("--force", action="store_true", help="overwrite an existing bundle in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        convert(args)
    except (ConversionError, ArchitectureError, CheckpointFormatError) as e:
        sys.stderr.write(f"convert_checkpoint: error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
