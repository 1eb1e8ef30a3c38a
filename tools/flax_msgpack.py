"""Streaming reader for legacy Flax single-file msgpack checkpoints (flax.serialization.to_bytes).

Why this exists instead of flax.serialization.msgpack_restore: the released AV-MAE checkpoints are ~1.2 GB of
parameters (plus optimizer moments in training checkpoints), and the converter must not need JAX/Flax nor hold
the whole file in memory. msgpack's Unpacker hands every array to `ext_hook` as a bytes object, so decoding the
whole tree at once would keep every array alive. This module reads the file twice instead:

- `scan(path)` returns the nested tree with each array replaced by an `ArrayRef` (shape, dtype, size and its
  position among the file's arrays); the array bytes are dropped as soon as they are seen.
- `stream(path, sinks)` reads the file again and hands the raw bytes of each wanted array (by position) to its
  sink, one array at a time, in file order.

Encoding (spec Part B §8.4): nested msgpack maps with string keys; an array is ExtType 1 whose payload is msgpack
`(shape, dtype name, raw C-order little-endian bytes)`; ExtType 3 is a numpy scalar with the same payload;
ExtType 2 is a complex scalar; arrays above flax's MAX_CHUNK_SIZE are maps
`{'__msgpack_chunked_array__': True, 'shape': {'0': ..}, 'chunks': {'0': <flat array>, ..}}`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import msgpack

EXT_ARRAY = 1
EXT_COMPLEX = 2
EXT_SCALAR = 3
CHUNKED_MARKER = "__msgpack_chunked_array__"

# msgpack type bytes that start a map: fixmap 0x80-0x8f, map16 0xde, map32 0xdf.
_MAP_FIRST_BYTES = set(range(0x80, 0x90)) | {0xDE, 0xDF}


class CheckpointFormatError(Exception):
    """The file is not a legacy Flax msgpack checkpoint, or is damaged."""


@dataclass(frozen=True)
class ArrayRef:
    """One array in the file: `seq` is its position among all ExtType values in file order."""

    seq: int
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


@dataclass(frozen=True)
class ChunkedArrayRef:
    """An array flax split into flat chunks; `chunks` are in index order and concatenate to `shape`."""

    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[ArrayRef, ...]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.chunks)


@dataclass(frozen=True)
class OpaqueExt:
    """An ExtType this reader does not decode (complex scalars, unknown codes)."""

    seq: int
    code: int


Progress = Optional[Callable[[int, int], None]]  # (bytes read so far, file size)


class _CountingReader:
    """File wrapper that reports how many bytes msgpack has pulled so far."""

    def __init__(self, f, total: int, progress: Progress):
        self._f, self._total, self._progress, self._done = f, total, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._done += len(data)
        if self._progress is not None:
            self._progress(self._done, self._total)
        return data


def check_looks_like_msgpack_map(path: str) -> None:
    """Fails fast with a useful message on files that are clearly something else."""
    if os.path.isdir(path):
        raise CheckpointFormatError(
            f"{path} is a directory; only the legacy single-file msgpack checkpoint is supported "
            "(an Orbax checkpoint directory is not)")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointFormatError(f"{path} is empty")
    if head[:2] == b"PK":
        raise CheckpointFormatError(f"{path} is a zip archive (a TF SavedModel?), not a Flax msgpack checkpoint")
    if head[0] not in _MAP_FIRST_BYTES:
        raise CheckpointFormatError(f"{path} is not msgpack: a Flax checkpoint starts with a map, "
                                    f"first byte is 0x{head[0]:02x}")


def _unpacker(f, ext_hook) -> msgpack.Unpacker:
    # max_buffer_size=0 lifts msgpack's 100 MiB default so that one large array can be buffered.
    return msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=0, read_size=1 << 20,
                            ext_hook=ext_hook)


def _decode_payload_header(data: bytes) -> tuple[tuple[int, ...], str, bytes]:
    shape, dtype, raw = msgpack.unpackb(data, raw=False)
    if not isinstance(dtype, str) or not isinstance(raw, bytes):
        raise CheckpointFormatError("array payload is not (shape, dtype name, bytes)")
    return tuple(int(d) for d in shape), dtype, raw


def _read_tree(path: str, ext_hook, progress: Progress):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        unpacker = _unpacker(_CountingReader(f, size, progress), ext_hook)
        try:
            tree = unpacker.unpack()
        except CheckpointFormatError:
            raise
        except (msgpack.OutOfData, msgpack.ExtraData) as e:
            raise CheckpointFormatError(f"{path} is truncated or not msgpack ({type(e).__name__})") from e
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise CheckpointFormatError(f"{path} is not a valid msgpack checkpoint: {e}") from e
        try:
            unpacker.unpack()
        except msgpack.OutOfData:
            return tree
        raise CheckpointFormatError(f"{path} has trailing data after the checkpoint map")


def _fold_chunked(node):
    """Replaces flax chunked-array maps by ChunkedArrayRef, recursively."""
    if not isinstance(node, dict):
        return node
    if node.get(CHUNKED_MARKER) is True:
        try:
            shape = tuple(int(node["shape"][str(i)]) for i in range(len(node["shape"])))
            chunks = tuple(node["chunks"][str(i)] for i in range(len(node["chunks"])))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointFormatError(f"malformed chunked array map ({e})") from e
        if not chunks or not all(isinstance(c, ArrayRef) and len(c.shape) == 1 for c in chunks):
            raise CheckpointFormatError("chunked array map whose chunks are not flat arrays")
        dtypes = {c.dtype for c in chunks}
        if len(dtypes) != 1:
            raise CheckpointFormatError(f"chunked array with mixed dtypes {sorted(dtypes)}")
        count = 1
        for d in shape:
            count *= d
        if sum(c.shape[0] for c in chunks) != count:
            raise CheckpointFormatError(f"chunked array of shape {list(shape)} whose chunks hold "
                                        f"{sum(c.shape[0] for c in chunks)} elements")
        return ChunkedArrayRef(shape, dtypes.pop(), chunks)
    return {k: _fold_chunked(v) for k, v in node.items()}


def scan(path: str, progress: Progress = None) -> dict:
    """Pass 1: the checkpoint tree with arrays replaced by ArrayRef / ChunkedArrayRef / OpaqueExt."""
    check_looks_like_msgpack_map(path)
    counter = [0]

    def ext_hook(code: int, data: bytes):
        seq = counter[0]
        counter[0] += 1
        if code in (EXT_ARRAY, EXT_SCALAR):
            shape, dtype, raw = _decode_payload_header(data)
            return ArrayRef(seq, shape, dtype, len(raw))
        return OpaqueExt(seq, code)

    tree = _read_tree(path, ext_hook, progress)
    if not isinstance(tree, dict):
        raise CheckpointFormatError(f"{path}: top level is {type(tree).__name__}, expected a map")
    return _fold_chunked(tree)


def stream(path: str, sinks: dict[int, Callable[[bytes], None]], progress: Progress = None) -> None:
    """Pass 2: calls sinks[seq](raw bytes) for every wanted array, in file order; other arrays are skipped."""
    counter = [0]

    def ext_hook(code: int, data: bytes):
        seq = counter[0]
        counter[0] += 1
        sink = sinks.get(seq)
        if sink is not None:
            sink(_decode_payload_header(data)[2])
        return None

    _read_tree(path, ext_hook, progress)
    if counter[0] < (max(sinks) + 1 if sinks else 0):
        raise CheckpointFormatError(f"{path} changed between the two reads")
