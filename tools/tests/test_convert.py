"""convert_checkpoint.py against the golden compact checkpoints and rewritten variants of them.

The golden params (Tests/AVMAETests/Fixtures/params.safetensors, names <model>/<flax path>) were written by the
upstream code from the same weights, so a converted bundle must hold exactly those tensors, bit for bit.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from safetensors.numpy import load_file

from checkpoints import (FIXTURE_CHECKPOINTS, GOLDEN_PARAMS, MODELS, REPO, chunked, decode, ext, pop_path, read_raw,
                         set_path, write_raw, write_streaming, zeros_like_tree)
from conftest import COMPACT_ARGS, CONVERTER, run_converter

EXPECTED_CONFIG = {
    "pretrain": dict(kind="pretrained", encoder="mid_fusion", modalities=["audio", "video"], num_layers=1,
                     joint_layers=1, fusion_layer=0, bottlenecks=0, num_classes=0, label_set="none",
                     frames=4, stride=4, resize_short=224, mean=0.0, std=1.0),
    "ft_av": dict(kind="finetuned", encoder="mbt", modalities=["audio", "video"], num_layers=2, joint_layers=0,
                  fusion_layer=1, bottlenecks=4, num_classes=527, label_set="audioset", frames=4, stride=2,
                  resize_short=256, mean=1.102, std=2.762),
    "ft_a": dict(kind="finetuned", encoder="mbt", modalities=["audio"], num_layers=2, joint_layers=0, fusion_layer=0,
                 bottlenecks=4, num_classes=527, label_set="audioset", frames=4, stride=2, resize_short=256,
                 mean=1.102, std=2.762),
    "ft_v": dict(kind="finetuned", encoder="mbt", modalities=["video"], num_layers=2, joint_layers=0, fusion_layer=0,
                 bottlenecks=4, num_classes=527, label_set="audioset", frames=4, stride=2, resize_short=256,
                 mean=1.102, std=2.762),
}


@pytest.fixture(scope="module")
def golden():
    return load_file(str(GOLDEN_PARAMS))


def golden_for(golden: dict, model: str) -> dict:
    prefix = model + "/"
    return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def convert_compact(checkpoint, out, *extra, pretrained: bool = False, check: bool = True):
    """Converts with the compact overrides; finetuned models get placeholder labels unless --labels is given."""
    labels = [] if pretrained or "--labels" in extra else ["--placeholder-labels"]
    return run_converter(checkpoint, "--out", out, *COMPACT_ARGS, *labels, *extra, check=check)


def assert_bundle_equals_golden(bundle, golden: dict, model: str) -> None:
    ours = load_file(str(bundle / "model.safetensors"))
    want = golden_for(golden, model)
    assert sorted(ours) == sorted(want)
    for name, value in want.items():
        assert ours[name].dtype == np.float32
        assert np.array_equal(ours[name], value), name


def error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("convert_checkpoint: error: ")
    return line


# ------------------------------------------------------------------------------------------- golden checkpoints


@pytest.mark.parametrize("model", MODELS)
def test_golden_checkpoint_converts_to_golden_params(tmp_path, golden, model):
    result = convert_compact(FIXTURE_CHECKPOINTS / f"{model}.flax.msgpack", tmp_path / model,
                             pretrained=model == "pretrain")
    assert "write" in result.stderr and "100.0%" in result.stderr  # the progress bar
    assert_bundle_equals_golden(tmp_path / model, golden, model)
    config = json.loads((tmp_path / model / "config.json").read_text())
    want = EXPECTED_CONFIG[model]
    for key in ("kind", "encoder", "modalities", "num_layers", "joint_layers", "fusion_layer", "bottlenecks",
                "num_classes", "label_set", "frames", "stride", "resize_short"):
        assert config[key] == want[key], key
    assert (config["hidden_size"], config["num_heads"], config["mlp_dim"]) == (32, 2, 64)
    assert config["clip_seconds"] == 1.6 and config["fps"] == 25 and config["format_version"] == 1
    assert (config["frontend"]["mean"], config["frontend"]["std"]) == (want["mean"], want["std"])
    labels = (tmp_path / model / "labels.csv").read_text().splitlines()
    assert labels[0] == "index,mid,display_name" and len(labels) == 1 + want["num_classes"]
    if want["num_classes"]:
        assert labels[1] == "0,placeholder/000,class_000" and config["placeholder_labels"] is True


def test_release_defaults(tmp_path):
    """Without the compact overrides, the numbers are the released configs' (spec A.1, A.2, A.4)."""
    run_converter(FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack", "--out", tmp_path / "a", "--placeholder-labels")
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (config["label_set"], config["clip_seconds"], config["frames"], config["stride"],
            config["resize_short"]) == ("audioset", 10.0, 32, 2, 256)
    assert config["frontend"] == {"sample_rate": 16000, "frame_length": 400, "frame_step": 160, "fft_length": 512,
                                  "window": "hamming", "pad_end": True, "spectrum": "magnitude", "mel_bins": 128,
                                  "lower_hz": 125.0, "upper_hz": 7500.0, "log_offset": 0.001, "mean": 1.102,
                                  "std": 2.762}
    assert config["name"] == "ft_a"
    run_converter(FIXTURE_CHECKPOINTS / "pretrain.flax.msgpack", "--out", tmp_path / "p", "--label-set", "vggsound")
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert (config["label_set"], config["dataset"], config["clip_seconds"], config["frames"], config["stride"],
            config["resize_short"]) == ("none", "vggsound", 8.0, 16, 4, 224)
    assert (config["frontend"]["mean"], config["frontend"]["std"]) == (0.0, 1.0)


def test_fusion_layer_default_is_checked_against_depth(tmp_path):
    """The 527-class default (18) does not fit a 2-layer model; the converter says so instead of writing it."""
    result = run_converter(FIXTURE_CHECKPOINTS / "ft_av.flax.msgpack", "--out", tmp_path / "b",
                           "--placeholder-labels", check=False)
    assert "--fusion-layer 18 is outside 0..2" in error_line(result)


def test_frontend_json_and_labels_csv(tmp_path):
    frontend = REPO.parent.parent / "shared" / "golden" / "frontend-alt.json"
    frontend = frontend if frontend.exists() else tmp_path / "fe.json"
    if not frontend.exists():
        frontend.write_text(json.dumps({"window": "hann", "spectrum": "power", "lower_hz": 0.0, "upper_hz": 8000.0,
                                        "log_offset": 1e-6, "mean": 0.0, "std": 1.0, "seconds": 8.0}))
    labels = tmp_path / "labels.csv"
    rows = ["index,mid,display_name"] + [f'{i},/m/{i:05d},"Name {i}, with comma"' for i in range(527)]
    labels.write_text("\n".join(rows) + "\n")
    convert_compact(FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack", tmp_path / "b", "--labels", labels,
                    "--frontend", frontend)
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["frontend"]["window"] == "hann" and config["frontend"]["spectrum"] == "power"
    assert config["frontend"]["log_offset"] == 1e-6 and "seconds" not in config["frontend"]
    assert "placeholder_labels" not in config
    assert (tmp_path / "b" / "labels.csv").read_text().splitlines()[3] == '2,/m/00002,"Name 2, with comma"'


# ------------------------------------------------------------------------------------------- layouts and encodings


@pytest.mark.parametrize("extra_params_level", [False, True])
def test_flax_optim_layout(tmp_path, golden, extra_params_level):
    tree = read_raw(FIXTURE_CHECKPOINTS / "ft_av.flax.msgpack")
    params = tree["params"]
    target = {"params": params} if extra_params_level else params
    state = {"step": 7, "param_states": {"grad_ema": zeros_like_tree(params), "grad_sq_ema": zeros_like_tree(params)}}
    path = write_raw(tmp_path / "ckpt", {"optimizer": {"target": target, "state": state}})
    result = convert_compact(path, tmp_path / "b")
    assert ("optimizer/target/params layout" if extra_params_level else "optimizer/target layout") in result.stderr
    assert_bundle_equals_golden(tmp_path / "b", golden, "ft_av")


def test_optax_train_state_with_optimizer_moments(tmp_path, golden):
    tree = read_raw(FIXTURE_CHECKPOINTS / "ft_v.flax.msgpack")
    params = tree["params"]
    full = {"global_step": 100, "model_state": {}, "opt_state": {"0": {"count": ext(np.array(100, np.int32)),
            "mu": zeros_like_tree(params), "nu": zeros_like_tree(params)}}, "params": params,
            "rng": ext(np.array([1, 2], np.uint32)), "metadata": {"chrono": {}}}
    convert_compact(write_raw(tmp_path / "ckpt", full), tmp_path / "b")
    assert_bundle_equals_golden(tmp_path / "b", golden, "ft_v")


@pytest.mark.parametrize("model,renames", [
    ("pretrain", {"embedding_spectrogram": "embedding_spec", "embedding_rgb": "embedding"}),
    ("ft_av", {"embedding_spectrogram": "embedding_spec", "embedding": "embedding_rgb"}),
])
def test_other_stem_spellings_are_canonicalised(tmp_path, golden, model, renames):
    tree = read_raw(FIXTURE_CHECKPOINTS / f"{model}.flax.msgpack")
    params = tree["params"]
    for old, new in renames.items():
        params[new] = params.pop(old)
    result = convert_compact(write_raw(tmp_path / "ckpt", tree), tmp_path / "b", pretrained=model == "pretrain")
    assert "stems renamed" in result.stderr
    assert_bundle_equals_golden(tmp_path / "b", golden, model)


def test_chunked_arrays_in_any_key_order(tmp_path, golden):
    tree = read_raw(FIXTURE_CHECKPOINTS / "ft_av.flax.msgpack")
    params = tree["params"]
    kernel = decode(params["embedding"]["kernel"])  # 49152 elements -> 13 chunks, keys stored '0','1','10',..
    params["embedding"]["kernel"] = chunked(kernel, 4000, key_order=sorted)
    head = decode(params["ProjectionHeadAndClassifier_0"]["output_projection"]["kernel"])
    params["ProjectionHeadAndClassifier_0"]["output_projection"]["kernel"] = chunked(head, 5000)
    convert_compact(write_raw(tmp_path / "ckpt", tree), tmp_path / "b")
    assert_bundle_equals_golden(tmp_path / "b", golden, "ft_av")


def test_pretraining_decoder_is_dropped(tmp_path, golden):
    tree = read_raw(FIXTURE_CHECKPOINTS / "pretrain.flax.msgpack")
    params = tree["params"]
    block = params["Transformer_rgb"]["encoderblock_0"]
    params["Decoder"] = {"encoderblock_0": zeros_like_tree(block), "encoder_norm": {"scale": ext(np.ones(32, "f4"))}}
    for m, width in (("rgb", 1536), ("spectrogram", 256)):
        params[f"decoder_projection_{m}"] = {"kernel": ext(np.ones((32, 16), "f4")), "bias": ext(np.ones(16, "f4"))}
        params[f"mask_token_{m}"] = ext(np.zeros((1, 1, 16), "f4"))
        params[f"output_projection_{m}"] = {"kernel": ext(np.ones((16, width), "f4")),
                                            "bias": ext(np.ones(width, "f4"))}
    result = convert_compact(write_raw(tmp_path / "ckpt", tree), tmp_path / "b", pretrained=True)
    assert "58 tensors kept, 27 dropped" in result.stderr
    assert_bundle_equals_golden(tmp_path / "b", golden, "pretrain")


def test_half_precision_is_widened(tmp_path, golden):
    tree = read_raw(FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack")
    bias = decode(tree["params"]["Transformer"]["encoder_norm"]["bias"])
    tree["params"]["Transformer"]["encoder_norm"]["bias"] = ext(bias.astype(np.float16))
    convert_compact(write_raw(tmp_path / "ckpt", tree), tmp_path / "b")
    ours = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert np.array_equal(ours["Transformer/encoder_norm/bias"], bias.astype(np.float16).astype(np.float32))


# ------------------------------------------------------------------------------------------- refusals


def mutated(tmp_path, model: str, mutate) -> str:
    tree = read_raw(FIXTURE_CHECKPOINTS / f"{model}.flax.msgpack")
    mutate(tree)
    return str(write_raw(tmp_path / "ckpt", tree))


def set_param(name, value):
    return lambda tree: set_path(tree["params"], name, value)


REFUSALS = {
    "unknown layout": ("ft_a", lambda t: t.update(weights=t.pop("params")), "unknown layout: top-level keys are "
                       "[global_step, weights]"),
    "missing tensor": ("ft_av", lambda t: pop_path(t["params"], "Transformer/encoderblock_1_spec/MlpBlock_0/Dense_1/bias"),
                       "missing tensor Transformer/encoderblock_1_spec/MlpBlock_0/Dense_1/bias"),
    "missing classifier": ("ft_a", lambda t: t["params"].pop("ProjectionHeadAndClassifier_0"),
                           "missing tensor ProjectionHeadAndClassifier_0/output_projection/kernel"),
    "missing bottleneck": ("ft_av", lambda t: t["params"].pop("bottleneck"), "missing tensor bottleneck"),
    "inconsistent shape": ("ft_av", set_param("Transformer/encoderblock_1/MlpBlock_0/Dense_0/kernel",
                                              ext(np.zeros((32, 48), "f4"))),
                           "inconsistent shape: Transformer/encoderblock_1/MlpBlock_0/Dense_0/kernel is [32, 48], "
                           "expected [32, 64]"),
    "inconsistent width": ("pretrain", set_param("Transformer_concat/encoder_norm/scale", ext(np.ones(16, "f4"))),
                           "inconsistent shape: Transformer_concat/encoder_norm/scale is [16], expected [32]"),
    "unexpected tensor": ("ft_a", set_param("Transformer/extra/kernel", ext(np.ones(3, "f4"))),
                          "unexpected tensor Transformer/extra/kernel"),
    "two stems": ("ft_av", set_param("embedding_spec/bias", ext(np.ones(32, "f4"))),
                  "both embedding_spectrogram/ and embedding_spec/ are present"),
    "no towers": ("ft_a", lambda t: t["params"].pop("Transformer"), "unknown model: no Transformer/"),
    "integer weights": ("ft_a", set_param("bottleneck", ext(np.ones((1, 4, 32), "i4"))),
                        "tensor bottleneck has dtype int32"),
    "inflated spectrogram stem": ("ft_a", set_param("embedding_spectrogram/kernel", ext(np.ones((16, 16, 3, 32), "f4"))),
                                  "3 input channels"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refuses_bad_checkpoints(tmp_path, case):
    model, mutate, message = REFUSALS[case]
    result = convert_compact(mutated(tmp_path, model, mutate), tmp_path / "b", pretrained=model == "pretrain",
                             check=False)
    assert message in error_line(result)
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_refuses_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "is not msgpack" in error_line(run_converter(text, "--out", tmp_path / "b", check=False))
    zipped = tmp_path / "tf_saved_model.zip"
    zipped.write_bytes(b"PK\x03\x04rest")
    assert "zip archive" in error_line(run_converter(zipped, "--out", tmp_path / "b", check=False))
    truncated = tmp_path / "truncated"
    truncated.write_bytes((FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack").read_bytes()[:100_000])
    assert "truncated" in error_line(run_converter(truncated, "--out", tmp_path / "b", check=False))
    assert "is a directory" in error_line(run_converter(tmp_path, "--out", tmp_path / "b", check=False))
    assert "does not exist" in error_line(run_converter(tmp_path / "nope", "--out", tmp_path / "b", check=False))


def test_refuses_label_problems(tmp_path):
    ckpt = FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack"
    short = tmp_path / "short.csv"
    short.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i},n{i}\n" for i in range(10)))
    result = run_converter(ckpt, "--out", tmp_path / "b", *COMPACT_ARGS, "--labels", short, check=False)
    assert "has 10 labels but the classifier has 527 classes" in error_line(result)
    result = run_converter(ckpt, "--out", tmp_path / "b", *COMPACT_ARGS, check=False)
    assert "--labels CSV is required for a 527-class model" in error_line(result)
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("0,/m/0,speech\n")
    result = run_converter(ckpt, "--out", tmp_path / "b", *COMPACT_ARGS, "--labels", headerless, check=False)
    assert "first row must be the header" in error_line(result)
    result = run_converter(FIXTURE_CHECKPOINTS / "pretrain.flax.msgpack", "--out", tmp_path / "b", *COMPACT_ARGS,
                           "--labels", short, check=False)
    assert "a pretrained encoder has no classifier" in error_line(result)
    result = run_converter(ckpt, "--out", tmp_path / "b", *COMPACT_ARGS, "--placeholder-labels",
                           "--label-set", "vggsound", check=False)
    assert "--label-set vggsound does not match the 527-class head" in error_line(result)


def test_refuses_to_guess_what_cannot_be_read_from_weights(tmp_path):
    result = run_converter(FIXTURE_CHECKPOINTS / "pretrain.flax.msgpack", "--out", tmp_path / "b", check=False)
    assert "pass --label-set audioset|vggsound (sets clip_seconds)" in error_line(result)
    tree = read_raw(FIXTURE_CHECKPOINTS / "ft_av.flax.msgpack")
    head = tree["params"]["ProjectionHeadAndClassifier_0"]["output_projection"]
    head["kernel"], head["bias"] = ext(np.zeros((32, 10), "f4")), ext(np.zeros(10, "f4"))
    result = run_converter(write_raw(tmp_path / "ckpt", tree), "--out", tmp_path / "b", "--placeholder-labels",
                           "--label-set", "audioset", check=False)
    assert "no default for a 10-class head; pass --fusion-layer N" in error_line(result)
    result = run_converter(tmp_path / "ckpt", "--out", tmp_path / "b", "--placeholder-labels", check=False)
    assert "cannot tell the label set of a 10-class head" in error_line(result)


def test_refuses_to_overwrite_without_force(tmp_path):
    args = (FIXTURE_CHECKPOINTS / "ft_a.flax.msgpack", "--out", tmp_path / "b", *COMPACT_ARGS, "--placeholder-labels")
    run_converter(*args)
    assert "pass --force" in error_line(run_converter(*args, check=False))
    run_converter(*args, "--force")


# ------------------------------------------------------------------------------------------- bounded memory


def big_mbt_spec(width: int, layers: int, classes: int) -> dict:
    mlp, heads = 4 * width, width // 64
    block = {"LayerNorm_0": {"bias": (width,), "scale": (width,)}, "LayerNorm_1": {"bias": (width,), "scale": (width,)},
             "MlpBlock_0": {"Dense_0": {"bias": (mlp,), "kernel": (width, mlp)},
                            "Dense_1": {"bias": (width,), "kernel": (mlp, width)}},
             "MultiHeadDotProductAttention_0": {
                 **{p: {"bias": (heads, 64), "kernel": (width, heads, 64)} for p in ("key", "query", "value")},
                 "out": {"bias": (width,), "kernel": (heads, 64, width)}}}
    return {"ProjectionHeadAndClassifier_0": {"output_projection": {"bias": (classes,), "kernel": (width, classes)}},
            "Transformer": {**{f"encoderblock_{i}": block for i in range(layers)},
                            "encoder_norm": {"bias": (width,), "scale": (width,)}},
            "bottleneck": (1, 4, width),
            "embedding_spectrogram": {"bias": (width,), "kernel": (16, 16, 1, width)}}


def test_large_checkpoint_converts_in_bounded_memory(tmp_path):
    """A 12-layer width-512 audio model (~460 MB with Adam moments) converts with peak RSS far below its size."""
    spec = big_mbt_spec(512, 12, 527)
    path = tmp_path / "checkpoint"
    write_streaming(path, {"opt_state": {"mu": spec, "nu": spec}, "params": spec, "global_step": ()},
                    lambda name, shape: np.full(shape, zlib.crc32(name.encode()) % 97 / 97, np.float32))
    size = path.stat().st_size
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child spawned by a pytest
    # process that has grown (other tests' arrays) would report the parent's peak. VmHWM belongs to the new image.
    probe = ("import re, sys; sys.argv[0] = 'convert_checkpoint'; sys.path.insert(0, sys.argv[1]); "
             "import convert_checkpoint as c; rc = c.main(sys.argv[2:]); "
             "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", probe, str(CONVERTER.parent), str(path), "--out",
                             str(tmp_path / "b"), "--placeholder-labels", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.strip()) / 1024
    bundle_mb = (tmp_path / "b" / "model.safetensors").stat().st_size / 1e6
    print(f"checkpoint {size / 1e6:.0f} MB -> bundle {bundle_mb:.0f} MB, converter peak RSS {peak_mb:.0f} MB")
    assert size > 400e6 and bundle_mb > 140
    assert peak_mb < 120, f"converter peak RSS {peak_mb:.0f} MB for a {size / 1e6:.0f} MB checkpoint"
    ours = load_file(str(tmp_path / "b" / "model.safetensors"))
    name = "Transformer/encoderblock_11/MlpBlock_0/Dense_1/kernel"
    assert np.array_equal(ours[name], np.full((2048, 512), zlib.crc32(("params/" + name).encode()) % 97 / 97, np.float32))
