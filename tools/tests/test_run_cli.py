"""End to end: converted golden checkpoints through `avmae-serve run` match the upstream outputs.

Runs only when AVMAE_SERVE_BIN points at the built binary (Tests/run.sh sets it); otherwise it is skipped with
that reason. Inputs and references come from Tests/AVMAETests/Fixtures/io.safetensors (upstream Scenic outputs on
the same weights). Tolerance: max|ours - ref| / max|ref| <= 1e-4 (float32 vs the float32 upstream; the golden
README measures float32 vs float64 at ~1e-6).
"""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from checkpoints import FIXTURE_CHECKPOINTS, GOLDEN_IO
from conftest import COMPACT_ARGS, run_converter

BIN = os.environ.get("AVMAE_SERVE_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="AVMAE_SERVE_BIN is not set: the `avmae-serve run` parity check "
                                "did not run (Tests/run.sh sets it after building the binary)")
TOLERANCE = 1e-4

# model -> (inputs to pass, {output tensor: io.safetensors reference})
CASES = {
    "pretrain": (("spectrogram", "frames"), {"audio_tokens": "outputs/pretrain/encoder_tokens/spectrogram",
                                            "rgb_tokens": "outputs/pretrain/encoder_tokens/rgb"}),
    "ft_av": (("spectrogram", "frames"), {"logits": "outputs/finetune/as527/av/logits"}),
    "ft_a": (("spectrogram",), {"logits": "outputs/finetune/as527/a/logits"}),
    "ft_v": (("frames",), {"logits": "outputs/finetune/as527/v/logits"}),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    io = load_file(str(GOLDEN_IO))
    folder = tmp_path_factory.mktemp("inputs")
    rgb = io["inputs/rgb4_uint8"]
    arrays = {"spectrogram": io["inputs/spectrogram"], "frames": rgb,
              "frames_f32": (rgb.astype(np.float32) / np.float32(255) * np.float32(2) - np.float32(1))}
    paths = {}
    for name, value in arrays.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], value)
    return io, paths


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    return float(np.max(np.abs(ours.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def run_bundle(bundle, out, args) -> dict:
    result = subprocess.run([BIN, "run", "--bundle", str(bundle), *map(str, args), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"avmae-serve run failed: {result.stderr}"
    return load_file(str(out))


@pytest.mark.parametrize("model", sorted(CASES))
def test_run_matches_upstream(tmp_path, inputs, model):
    io, paths = inputs
    bundle = tmp_path / "bundle"
    run_converter(FIXTURE_CHECKPOINTS / f"{model}.flax.msgpack", "--out", bundle, *COMPACT_ARGS,
                  *([] if model == "pretrain" else ["--placeholder-labels"]))
    wanted, references = CASES[model]
    args = [a for name in wanted for a in (f"--{name}", paths[name])]
    outputs = run_bundle(bundle, tmp_path / "out.safetensors", args)
    for name, ref in references.items():
        error = relative_error(outputs[name], io[ref])
        print(f"{model} {name}: max|ours-ref|/max|ref| = {error:.2e}")
        assert error <= TOLERANCE, f"{model} {name}: relative error {error:.2e} > {TOLERANCE}"


def test_float_frames_equal_uint8_frames(tmp_path, inputs):
    io, paths = inputs
    bundle = tmp_path / "bundle"
    run_converter(FIXTURE_CHECKPOINTS / "ft_v.flax.msgpack", "--out", bundle, *COMPACT_ARGS, "--placeholder-labels")
    outputs = run_bundle(bundle, tmp_path / "out.safetensors", ["--frames", paths["frames_f32"]])
    assert relative_error(outputs["logits"], io["outputs/finetune/as527/v/logits"]) <= TOLERANCE


GOLDEN_DIR = os.environ.get("AVMAE_GOLDEN_DIR")
TINY = {  # checkpoint -> (video input, references); full-length shapes: 1000 spectrogram frames, 16/32 video frames
    "pretrain": ("rgb16_uint8", {"audio_tokens": "outputs/pretrain/encoder_tokens/spectrogram",
                                 "rgb_tokens": "outputs/pretrain/encoder_tokens/rgb"}),
    **{f"ft_{m}{head}": ("rgb32_uint8", {"logits": f"outputs/finetune/{labels}/{m}/logits"})
       for m in ("av", "a", "v") for head, labels in (("", "as527"), ("_head_vgg309", "vgg309"))},
}


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory):
    io = load_file(os.path.join(GOLDEN_DIR, "tiny", "io.safetensors"))
    folder = tmp_path_factory.mktemp("tiny_inputs")
    paths = {}
    for name in ("spectrogram", "rgb16_uint8", "rgb32_uint8"):
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], io[f"inputs/{name}"])
    return io, paths


@pytest.mark.skipif(not GOLDEN_DIR, reason="AVMAE_GOLDEN_DIR is not set: the full-length tiny golden check "
                    "(../shared/golden/tiny, 29 MB, not committed) did not run")
@pytest.mark.parametrize("model", sorted(TINY))
def test_tiny_checkpoints_at_release_defaults(tmp_path, tiny_inputs, model):
    """Full-length shapes with the converter's release defaults (clip 10 s, 16/32 frames, label set from the head)."""
    io, paths = tiny_inputs
    video, references = TINY[model]
    bundle = tmp_path / "bundle"
    labels = [] if model == "pretrain" else ["--placeholder-labels"]
    run_converter(os.path.join(GOLDEN_DIR, "tiny", "checkpoints", f"{model}.flax.msgpack"), "--out", bundle,
                  "--fusion-layer", "1", "--clip-seconds", "10", *labels,
                  *(["--label-set", "audioset"] if model == "pretrain" else []))
    modalities = "av" if model == "pretrain" else model.split("_")[1]  # ft_<av|a|v>[_head_vgg309]
    args = (["--spectrogram", paths["spectrogram"]] if "a" in modalities else []) + \
           (["--frames", paths[video]] if "v" in modalities else [])
    outputs = run_bundle(bundle, tmp_path / "out.safetensors", args)
    for name, ref in references.items():
        error = relative_error(outputs[name], io[ref])
        print(f"tiny {model} {name}: max|ours-ref|/max|ref| = {error:.2e}")
        assert error <= TOLERANCE, f"tiny {model} {name}: relative error {error:.2e} > {TOLERANCE}"
