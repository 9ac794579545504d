"""Wire bytes for whole batches of rows: protobuf varints and RESP commands built by numpy and
Arrow kernels, a segment copy per piece instead of Python per row. Pure (no I/O).

Every column of bytes is an Arrow ``large_binary`` array: ``binary`` makes one from offsets and
a data buffer without copying, ``join`` concatenates columns and constants row by row (one
``binary_join_element_wise``: a ``memcpy`` per piece), and a ragged row of pieces (a list's
encoded elements, taken in one ``take``) is a slice of their concatenation: the list offsets
mapped through the elements' offsets. A batch of commands is then one contiguous buffer
(:class:`CommandBatch`), sent as it is.

Example::

    keys = Bulk.of(binary(np.array([0, 1, 3]), b"abc"))  # two rows: b"a", b"bc"
    bytes(batch(command(b"SET", keys, b"v")).data)
    # == b"*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\na\\r\\n$1\\r\\nv\\r\\n" b"*3\\r\\n...$2\\r\\nbc..."
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BIN = pa.large_binary()
Part: TypeAlias = "bytes | pa.Array"  # a constant, or one value per row
_EMPTY = pa.scalar(b"", BIN)
_SHIFTS = np.arange(0, 64, 7, dtype=np.uint64)  # the ten 7-bit groups of a 64-bit varint
_LIMITS = np.left_shift(np.uint64(1), _SHIFTS[1:])  # a value >= 2**(7k) needs > k bytes


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer, e.g. ``varint(300) == b"\\xac\\x02"``."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def bulk(arg: bytes) -> bytes:
    """One RESP bulk string, e.g. ``bulk(b"HSET") == b"$4\\r\\nHSET\\r\\n"``."""
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def binary(offsets: np.ndarray, data: object) -> pa.Array:
    """A ``large_binary`` array from its offsets (need not start at 0) and data buffer."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)  # type: ignore[arg-type]
    return pa.Array.from_buffers(BIN, len(offsets) - 1, [None, pa.py_buffer(offsets), buf])


def buffers(arr: pa.Array) -> tuple[np.ndarray, pa.Buffer]:
    """Offsets and data buffer of a binary array without nulls (row i is
    ``data[offsets[i]:offsets[i + 1]]``)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != BIN:
        arr = arr.cast(BIN)
    if arr.null_count:
        raise ValueError("a column of wire bytes has null values")
    offsets_buf, data = arr.buffers()[1:3]
    if offsets_buf is None:  # an empty array may come without buffers
        return np.zeros(len(arr) + 1, np.int64), pa.py_buffer(b"")
    offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return offsets, data or pa.py_buffer(b"")


def lengths(arr: pa.Array) -> np.ndarray:
    """Byte length of every row."""
    return np.diff(buffers(arr)[0])


def varints(values: np.ndarray) -> pa.Array:
    """Protobuf varints of int64 values, one row each (negatives as ten bytes, as protobuf
    writes them)."""
    v = np.ascontiguousarray(values, dtype=np.int64)
    if not len(v):
        return binary(np.zeros(1), b"")
    if v.min() >= 0 and v.max() < 1 << 14:  # up to 16 KiB: one or two bytes, the common case
        two = v >= 128
        if not two.any():
            return binary(np.arange(len(v) + 1), v.astype(np.uint8))
        out = np.empty((len(v), 2), np.uint8)
        out[:, 0] = np.where(two, (v & 0x7F) | 0x80, v)
        out[:, 1] = v >> 7
        keep = np.ones((len(v), 2), bool)
        keep[:, 1] = two
        return binary(np.concatenate([[0], np.cumsum(1 + two)]), out[keep])
    u = v.view(np.uint64)
    nbytes = 1 + (u[:, None] >= _LIMITS).sum(axis=1)
    groups = ((u[:, None] >> _SHIFTS) & np.uint64(0x7F)).astype(np.uint8)
    column = np.arange(len(_SHIFTS))
    groups |= np.where(column < (nbytes - 1)[:, None], 0x80, 0).astype(np.uint8)
    return binary(np.concatenate([[0], np.cumsum(nbytes)]), groups[column < nbytes[:, None]])


def decimals(values: np.ndarray) -> pa.Array:
    """ASCII decimals of integers (RESP lengths: no leading zeros, no sign for >= 0)."""
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.large_string()).cast(BIN)


def fixed(values: np.ndarray) -> pa.Array:
    """The little-endian bytes of each value of a 1-d numeric array, one row each."""
    raw = np.ascontiguousarray(values).view(np.uint8)
    return binary(np.arange(len(values) + 1) * values.dtype.itemsize, raw)


def ragged(pieces: pa.Array, index: np.ndarray, starts: np.ndarray) -> pa.Array:
    """Row i is the concatenation of ``pieces[index[starts[i]:starts[i + 1]]]``: one Arrow
    ``take`` of every row's pieces, whose concatenation each row is a slice of."""
    taken = pieces.take(pa.array(np.asarray(index, dtype=np.int64)))
    offsets, data = buffers(taken)
    return binary(offsets[starts], data)


def join(*parts: Part) -> pa.Array:
    """Row-wise concatenation of binary columns and constants (at least one column)."""
    merged: list[Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, bytes) and isinstance(last, bytes):
            merged[-1] = last + part
        elif not isinstance(part, bytes) or part:
            merged.append(part)
    args = [pa.scalar(p, BIN) if isinstance(p, bytes) else p for p in merged]
    return pc.binary_join_element_wise(*args, _EMPTY)


@dataclass(frozen=True)
class Bulk:
    """A column of values given as the pieces they are joined from (a mix of constants and
    columns) and their byte lengths: a value inside a command is copied once, with the
    command, not built on its own first."""

    size: np.ndarray
    parts: tuple[Part, ...]

    @staticmethod
    def of(column: pa.Array) -> Bulk:
        return Bulk(lengths(column), (column,))


def field(tag: bytes, payload: Bulk, omit_empty: bool = False) -> Bulk:
    """A protobuf length-delimited field per row: ``tag + varint(len) + payload``; with
    ``omit_empty``, nothing where the payload is empty (as protobuf writes a packed list)."""
    head = varints(payload.size)
    size = len(tag) + lengths(head) + payload.size
    if omit_empty and not payload.size.all():
        empty = payload.size == 0
        head = pc.if_else(pa.array(empty), _EMPTY, join(tag, head))
        return Bulk(np.where(empty, 0, size), (head, *payload.parts))
    return Bulk(size, (tag, head, *payload.parts))


def command(*args: bytes | Bulk) -> pa.Array:
    """One RESP command per row, the bytes of ``hiredis.pack_command`` of the row's arguments
    (``bytes`` are the same in every row)."""
    parts: list[Part] = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            parts.append(bulk(arg))
        else:
            parts += [b"$", decimals(arg.size), b"\r\n", *arg.parts, b"\r\n"]
    return join(*parts)


@dataclass(frozen=True)
class CommandBatch:
    """Packed commands in one buffer: command i is ``data[offsets[i]:offsets[i + 1]]``, and
    ``offsets[0] == 0``."""

    data: pa.Buffer
    offsets: np.ndarray

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def commands(self) -> list[bytes]:
        raw = self.data.to_pybytes()
        return [raw[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]


def batch(commands: pa.Array) -> CommandBatch:
    """The commands of a column as one contiguous buffer (no copy)."""
    offsets, data = buffers(commands)
    start, stop = int(offsets[0]), int(offsets[-1])
    return CommandBatch(data.slice(start, stop - start), offsets - start)
