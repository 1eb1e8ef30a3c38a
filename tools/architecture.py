"""Recognises an AV-MAE model from its flat Flax parameter names and shapes (spec Part A.2, Part B §5.3-§8).

Why from names and shapes: the released checkpoints carry no config, and the pretrained encoder strategy in the
published configs is not trustworthy (spec B §5.3), so everything the server needs except `fusion_layer` is read
off the tensors: which towers exist, how many blocks, width, heads (query kernel [D, H, Dh]), MLP width, joint
blocks, bottleneck tokens and classifier classes. Every tensor is checked against those numbers, and every tensor
the server would not use is refused, so a bundle that converts is a bundle that loads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# The pretraining decoder and masking parameters: training-only, never in a bundle.
DROPPED_TOP_LEVEL = re.compile(r"^(Decoder|decoder_projection_.*|mask_token_.*|output_projection_(rgb|spectrogram))$")
# Learned position tables are not used (AV-MAE's positions are sinusoidal, spec B §8.2); drop any that appear.
DROPPED_ANY_LEVEL = re.compile(r"^pos_embedding")

# Per-block parameters; shape templates over D (width), H (heads), K (head dim), M (MLP width).
BLOCK_TEMPLATE = {
    "LayerNorm_0/scale": "D", "LayerNorm_0/bias": "D",
    "LayerNorm_1/scale": "D", "LayerNorm_1/bias": "D",
    **{f"MultiHeadDotProductAttention_0/{p}/kernel": "DHK" for p in ("query", "key", "value")},
    **{f"MultiHeadDotProductAttention_0/{p}/bias": "HK" for p in ("query", "key", "value")},
    "MultiHeadDotProductAttention_0/out/kernel": "HKD", "MultiHeadDotProductAttention_0/out/bias": "D",
    "MlpBlock_0/Dense_0/kernel": "DM", "MlpBlock_0/Dense_0/bias": "M",
    "MlpBlock_0/Dense_1/kernel": "MD", "MlpBlock_0/Dense_1/bias": "D",
}
NORM_TEMPLATE = {"scale": "D", "bias": "D"}
PATCH = 16


class ArchitectureError(Exception):
    """The parameter set is not one of the AV-MAE models avmae-serve serves; the message names the tensor."""


@dataclass
class Architecture:
    kind: str                 # pretrained | finetuned
    encoder: str              # mbt | mid_fusion | separate
    modalities: list[str]     # subset of ["audio", "video"], in that order
    hidden_size: int
    num_heads: int
    mlp_dim: int
    num_layers: int
    joint_layers: int
    bottlenecks: int
    num_classes: int
    renames: dict[str, str] = field(default_factory=dict)  # checkpoint name -> bundle name (stem spellings)
    dropped: list[str] = field(default_factory=list)       # checkpoint names left out of the bundle


def _rename_stem(shapes: dict, aliases: tuple[str, ...], canonical: str, renames: dict) -> None:
    present = [a for a in aliases if any(n.startswith(a + "/") for n in shapes)]
    if len(present) > 1:
        raise ArchitectureError(f"both {present[0]}/ and {present[1]}/ are present; expected one patch embedding")
    if present and present[0] != canonical:
        for name in [n for n in shapes if n.startswith(present[0] + "/")]:
            new = canonical + name[len(present[0]):]
            renames[name] = new
            shapes[new] = shapes.pop(name)


def _block_indices(shapes: dict, prefix: str, suffix: str = "") -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}/encoderblock_(\d+){re.escape(suffix)}/")
    return sorted({int(m.group(1)) for n in shapes if (m := pattern.match(n))})


def detect(shapes_in: dict[str, tuple[int, ...]]) -> Architecture:
    """shapes_in: checkpoint parameter name (without params/) -> shape. Raises ArchitectureError."""
    shapes = dict(shapes_in)
    dropped = sorted(n for n in shapes if DROPPED_TOP_LEVEL.match(n.split("/")[0])
                     or any(DROPPED_ANY_LEVEL.match(part) for part in n.split("/")))
    for n in dropped:
        del shapes[n]
    groups = {n.split("/")[0] for n in shapes}
    renames: dict[str, str] = {}
    _rename_stem(shapes, ("embedding_spectrogram", "embedding_spec"), "embedding_spectrogram", renames)

    if "Transformer" in groups:
        if groups & {"Transformer_rgb", "Transformer_spectrogram", "Transformer_concat"}:
            raise ArchitectureError("both finetuned (Transformer/) and pretrained (Transformer_<m>/) towers present")
        _rename_stem(shapes, ("embedding", "embedding_rgb"), "embedding", renames)
        arch, expected = _mbt(shapes)
    elif groups & {"Transformer_rgb", "Transformer_spectrogram"}:
        _rename_stem(shapes, ("embedding_rgb", "embedding"), "embedding_rgb", renames)
        arch, expected = _pretrained(shapes)
    else:
        raise ArchitectureError("unknown model: no Transformer/, Transformer_rgb/ or Transformer_spectrogram/ "
                                f"tensors (top-level names: {', '.join(sorted(groups)) or 'none'})")
    _check(shapes, expected, arch)
    arch.renames, arch.dropped = renames, dropped
    return arch


def _stem_dims(shapes: dict, video_stem: str) -> tuple[list[str], int]:
    modalities, width = [], None
    audio = shapes.get("embedding_spectrogram/kernel")
    video = shapes.get(f"{video_stem}/kernel")
    if audio is not None:
        if len(audio) != 4 or audio[:2] != (PATCH, PATCH):
            raise ArchitectureError(f"embedding_spectrogram/kernel has shape {list(audio)}, expected [16,16,1,D]")
        if audio[2] != 1:
            raise ArchitectureError(f"embedding_spectrogram/kernel has {audio[2]} input channels (an inflated "
                                    "spectrogram model); only 1-channel spectrogram stems are supported")
        modalities.append("audio")
        width = audio[3]
    if video is not None:
        if len(video) != 5 or video[1:4] != (PATCH, PATCH, 3):
            raise ArchitectureError(f"{video_stem}/kernel has shape {list(video)}, expected [T,16,16,3,D]")
        modalities.append("video")
        if width is not None and video[4] != width:
            raise ArchitectureError(f"{video_stem}/kernel width {video[4]} != embedding_spectrogram width {width}")
        width = video[4]
    if width is None:
        raise ArchitectureError(f"missing tensor embedding_spectrogram/kernel or {video_stem}/kernel "
                                "(no patch embedding found)")
    return modalities, width


def _block_dims(shapes: dict, block: str, width: int) -> tuple[int, int, int]:
    q = shapes.get(f"{block}/MultiHeadDotProductAttention_0/query/kernel")
    mlp = shapes.get(f"{block}/MlpBlock_0/Dense_0/kernel")
    if q is None or mlp is None:
        missing = "MultiHeadDotProductAttention_0/query/kernel" if q is None else "MlpBlock_0/Dense_0/kernel"
        raise ArchitectureError(f"missing tensor {block}/{missing}")
    if len(q) != 3 or q[0] != width or len(mlp) != 2:
        raise ArchitectureError(f"{block}/MultiHeadDotProductAttention_0/query/kernel has shape {list(q)}, "
                                f"expected [{width},H,Dh]")
    return q[1], q[2], mlp[1]


def _block_names(prefix: str) -> dict[str, str]:
    return {f"{prefix}/{k}": t for k, t in BLOCK_TEMPLATE.items()}


def _norm_names(prefix: str) -> dict[str, str]:
    return {f"{prefix}/{k}": t for k, t in NORM_TEMPLATE.items()}


def _mbt(shapes: dict) -> tuple[Architecture, dict]:
    modalities, width = _stem_dims(shapes, "embedding")
    suffixes = ["", "_spec"] if len(modalities) == 2 else [""]
    depths = [_block_indices(shapes, "Transformer", s) for s in suffixes]
    if not depths[0]:
        raise ArchitectureError("missing tensor Transformer/encoderblock_0/... (no encoder blocks)")
    layers = max(max(d) if d else -1 for d in depths) + 1
    heads, head_dim, mlp = _block_dims(shapes, "Transformer/encoderblock_0", width)

    expected: dict[str, str | tuple] = {}
    for s in suffixes:
        for layer in range(layers):
            expected.update(_block_names(f"Transformer/encoderblock_{layer}{s}"))
    expected.update(_norm_names("Transformer/encoder_norm"))
    if "audio" in modalities:
        expected.update({"embedding_spectrogram/kernel": (PATCH, PATCH, 1, "D"), "embedding_spectrogram/bias": "D"})
    if "video" in modalities:
        expected.update({"embedding/kernel": (shapes["embedding/kernel"][0], PATCH, PATCH, 3, "D"),
                         "embedding/bias": "D"})
    bottleneck = shapes.get("bottleneck")
    if bottleneck is not None or len(modalities) == 2:
        if bottleneck is None:
            raise ArchitectureError("missing tensor bottleneck (an audio+video MBT model needs its bottleneck tokens)")
        if len(bottleneck) != 3 or bottleneck[0] != 1:
            raise ArchitectureError(f"bottleneck has shape {list(bottleneck)}, expected [1,n,{width}]")
        expected["bottleneck"] = (1, bottleneck[1], "D")
    head = shapes.get("ProjectionHeadAndClassifier_0/output_projection/kernel")
    if head is None or len(head) != 2:
        raise ArchitectureError("missing tensor ProjectionHeadAndClassifier_0/output_projection/kernel "
                                "(a finetuned model needs its classifier)")
    classes = head[1]
    expected["ProjectionHeadAndClassifier_0/output_projection/kernel"] = ("D", classes)
    expected["ProjectionHeadAndClassifier_0/output_projection/bias"] = (classes,)
    arch = Architecture("finetuned", "mbt", modalities, width, heads, mlp, layers, 0,
                        bottleneck[1] if bottleneck is not None else 0, classes)
    return arch, expected | {"_dims": (width, heads, head_dim, mlp)}


def _pretrained(shapes: dict) -> tuple[Architecture, dict]:
    modalities, width = _stem_dims(shapes, "embedding_rgb")
    towers = {"audio": "Transformer_spectrogram", "video": "Transformer_rgb"}
    for m, tower in towers.items():
        has_tower = any(n.startswith(tower + "/") for n in shapes)
        if has_tower != (m in modalities):
            stem = "embedding_spectrogram" if m == "audio" else "embedding_rgb"
            missing = f"{stem}/kernel" if has_tower else f"{tower}/encoderblock_0/..."
            raise ArchitectureError(f"missing tensor {missing} ({m} stem and tower must come together)")
    depths = {m: _block_indices(shapes, towers[m]) for m in modalities}
    layers = max(max(d) if d else -1 for d in depths.values()) + 1
    first = towers[modalities[0]]
    heads, head_dim, mlp = _block_dims(shapes, f"{first}/encoderblock_0", width)
    joint = _block_indices(shapes, "Transformer_concat")
    joint_layers = max(joint) + 1 if joint else 0

    expected: dict = {}
    for m in modalities:
        for layer in range(layers):
            expected.update(_block_names(f"{towers[m]}/encoderblock_{layer}"))
        expected.update(_norm_names(f"{towers[m]}/encoder_norm"))
    for layer in range(joint_layers):
        expected.update(_block_names(f"Transformer_concat/encoderblock_{layer}"))
    if joint_layers:
        expected.update(_norm_names("Transformer_concat/encoder_norm"))
    if "audio" in modalities:
        expected.update({"embedding_spectrogram/kernel": (PATCH, PATCH, 1, "D"), "embedding_spectrogram/bias": "D"})
    if "video" in modalities:
        expected.update({"embedding_rgb/kernel": (shapes["embedding_rgb/kernel"][0], PATCH, PATCH, 3, "D"),
                         "embedding_rgb/bias": "D"})
    arch = Architecture("pretrained", "mid_fusion" if joint_layers else "separate", modalities, width, heads, mlp,
                        layers, joint_layers, 0, 0)
    return arch, expected | {"_dims": (width, heads, head_dim, mlp)}


def _check(shapes: dict, expected: dict, arch: Architecture) -> None:
    width, heads, head_dim, mlp = expected.pop("_dims")
    letters = {"D": width, "H": heads, "K": head_dim, "M": mlp}
    for name in sorted(expected):
        if name not in shapes:
            raise ArchitectureError(f"missing tensor {name} (model looks like {arch.kind} {arch.encoder} "
                                    f"{'+'.join(arch.modalities)}, {arch.num_layers} layers)")
        template = expected[name]
        want = tuple(letters[t] if isinstance(t, str) else t for t in template)
        if shapes[name] != want:
            raise ArchitectureError(f"inconsistent shape: {name} is {list(shapes[name])}, expected {list(want)} "
                                    f"(D={width}, heads={heads}, head_dim={head_dim}, mlp={mlp})")
    for name in sorted(shapes):
        if name not in expected:
            raise ArchitectureError(f"unexpected tensor {name}: not part of a {arch.kind} {arch.encoder} "
                                    f"{'+'.join(arch.modalities)} model with {arch.num_layers} layers")
