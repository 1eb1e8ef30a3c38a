"""Test helpers that write Flax msgpack checkpoints the way flax.serialization.to_bytes does.

Why: the converter must accept layouts and encodings (flax.optim `optimizer/target`, chunked arrays, other stem
spellings, optimizer state) that the golden fixtures do not contain, so the tests rewrite the fixtures into them.
Arrays are msgpack ExtType 1 with payload msgpack((shape, dtype name, raw little-endian C-order bytes)).
"""
from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CHECKPOINTS = REPO / "tools" / "tests" / "fixtures" / "checkpoints"
GOLDEN_PARAMS = REPO / "Tests" / "AVMAETests" / "Fixtures" / "params.safetensors"
GOLDEN_IO = REPO / "Tests" / "AVMAETests" / "Fixtures" / "io.safetensors"
MODELS = ("pretrain", "ft_av", "ft_a", "ft_v")


def ext(array: np.ndarray) -> msgpack.ExtType:
    array = np.ascontiguousarray(array)
    return msgpack.ExtType(1, msgpack.packb((list(array.shape), array.dtype.name, array.tobytes())))


def decode(value: msgpack.ExtType) -> np.ndarray:
    shape, dtype, raw = msgpack.unpackb(value.data)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def chunked(array: np.ndarray, chunk_elements: int, key_order=None) -> dict:
    """flax's chunked-array map; key_order lets a test store chunk keys out of index order."""
    flat = np.ascontiguousarray(array).reshape(-1)
    chunks = {str(i): ext(flat[s:s + chunk_elements]) for i, s in enumerate(range(0, flat.size, chunk_elements))}
    keys = key_order(list(chunks)) if key_order else list(chunks)
    return {"__msgpack_chunked_array__": True,
            "shape": {str(i): d for i, d in enumerate(array.shape)},
            "chunks": {k: chunks[k] for k in keys}}


def read_raw(path: Path) -> dict:
    """The checkpoint tree with arrays left as ExtType (so they re-encode byte for byte)."""
    return msgpack.unpackb(Path(path).read_bytes(), raw=False, strict_map_key=False)


def write_raw(path: Path, tree) -> Path:
    Path(path).write_bytes(msgpack.packb(tree, use_bin_type=True))
    return Path(path)


def set_path(tree: dict, name: str, value) -> None:
    *parents, leaf = name.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def pop_path(tree: dict, name: str):
    *parents, leaf = name.split("/")
    for p in parents:
        tree = tree[p]
    return tree.pop(leaf)


def zeros_like_tree(tree: dict) -> dict:
    """Optimizer-moment-like copy of a params tree (ExtType leaves replaced by zero arrays of the same shape)."""
    return {k: zeros_like_tree(v) if isinstance(v, dict) else ext(np.zeros_like(decode(v))) for k, v in tree.items()}


def write_streaming(path: Path, spec: dict, fill) -> None:
    """Writes a large checkpoint without building it in memory: spec is a nested dict of shapes (tuples),
    fill(name, shape) returns each array when it is written."""
    with open(path, "wb") as f:
        packer = msgpack.Packer(use_bin_type=True)

        def emit(node: dict, prefix: str) -> None:
            f.write(packer.pack_map_header(len(node)))
            for key, value in node.items():
                f.write(packer.pack(key))
                if isinstance(value, dict):
                    emit(value, f"{prefix}{key}/")
                else:
                    f.write(packer.pack(ext(fill(f"{prefix}{key}", value))))

        emit(spec, "")
