"""Feast's Redis layout a column at a time: entity keys, ``ValueProto`` and ``Timestamp`` bytes
and RESP commands built by Arrow and numpy kernels, not one protobuf message per row.

Feast's materialization turns every row into protobuf objects in Python (about 20 us a row).
Here every piece of the wire format is an Arrow ``large_binary`` column: a varint column is
computed from a numpy matrix, a length-delimited field is ``tag + varint(len) + payload`` joined
element-wise (``binary_join_element_wise``), and a list's bytes are a slice of its elements'
concatenated bytes (the list offsets mapped through the elements' offsets). A batch of ``HSET``
commands is then one contiguous buffer, sent as it is.

The bytes are Feast's own: ``tests/recommender/featurestore/test_encode.py`` compares every
supported type (nulls, NaN, empty lists, negative numbers, non-ASCII text) with Feast's
``python_values_to_proto_values(...).SerializeToString()``, ``_redis_key`` and
``Timestamp.FromDatetime``. A column whose Arrow type is not handled here is converted by Feast's
own function (the same bytes, at Feast's speed).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from recommender.featurestore import resp
from recommender.featurestore.resp import BIN, Part, binary, buffers, lengths, varint, varints

_REPEATED = b"\x0a"  # field 1, length-delimited: StringList.val and the packed numeric lists

__all__ = ["binary", "buffers", "join", "lengths", "varints"]


def join(*parts: Part) -> pa.Array:
    """Row-wise concatenation of binary columns (of any binary-like or dictionary type) and
    constants (at least one column)."""
    return resp.join(*(p if isinstance(p, bytes) else _plain(p).cast(BIN) for p in parts))


def where(valid: np.ndarray, arr: pa.Array, other: bytes = b"") -> pa.Array:
    """``arr`` where ``valid``, else the constant ``other``."""
    return arr if valid.all() else pc.if_else(pa.array(valid), arr, pa.scalar(other, BIN))


def fixed(tag: bytes, values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``tag`` + the little-endian bytes of each value (b"" where not ``valid``)."""
    width = values.dtype.itemsize
    matrix = np.empty((len(values), len(tag) + width), np.uint8)
    matrix[:, : len(tag)] = np.frombuffer(tag, np.uint8)
    matrix[:, len(tag) :] = np.ascontiguousarray(values).view(np.uint8).reshape(-1, width)
    if valid is None or valid.all():
        return binary(np.arange(len(values) + 1) * matrix.shape[1], matrix)
    sizes = np.where(valid, matrix.shape[1], 0)
    return binary(np.concatenate([[0], np.cumsum(sizes)]), matrix[valid])


def delimited(tag: bytes, payload: pa.Array) -> pa.Array:
    """A length-delimited field: ``tag + varint(len) + payload``."""
    return join(tag, varints(lengths(payload)), payload)


def _plain(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _tag(field: str, wire: int) -> bytes:
    return varint(Value.DESCRIPTOR.fields_by_name[field].number << 3 | wire)


def _valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _int_type(t: pa.DataType, bits: int) -> bool:
    signed = pa.types.is_signed_integer(t) and t.bit_width <= bits
    return signed or (pa.types.is_unsigned_integer(t) and t.bit_width < bits)


def _scalar(vt: ValueType, arr: pa.Array) -> pa.Array | None:
    t, valid = arr.type, _valid(arr)
    if vt in (ValueType.STRING, ValueType.BYTES) and (_is_text(t) or _is_bytes(t)):
        if _is_text(t) != (vt == ValueType.STRING):
            return None
        tag = _tag("string_val" if vt == ValueType.STRING else "bytes_val", 2)
        return where(valid, delimited(tag, arr.fill_null("" if _is_text(t) else b"")))
    if vt in (ValueType.INT64, ValueType.INT32) and _int_type(
        t, 64 if vt == ValueType.INT64 else 32
    ):
        ints = arr.fill_null(0).to_numpy().astype(np.int64)
        tag = _tag("int64_val" if vt == ValueType.INT64 else "int32_val", 0)
        return where(valid, join(tag, varints(ints)))
    if vt == ValueType.FLOAT and (pa.types.is_floating(t) or _int_type(t, 64)):
        x = arr.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        return fixed(_tag("float_val", 5), x.astype("<f4"), ~np.isnan(x))  # NaN is null in Feast
    if vt == ValueType.DOUBLE and (pa.types.is_float64(t) or pa.types.is_int64(t)):
        x = arr.to_numpy(zero_copy_only=False).astype(np.float64)
        return fixed(_tag("double_val", 1), x.astype("<f8"), ~np.isnan(x))
    if vt == ValueType.BOOL and pa.types.is_boolean(t):
        flags = np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.uint8)
        return fixed(_tag("bool_val", 0), flags, valid)
    return None


_LISTS = {  # list type -> (Value field, element kind, packed element dtype)
    ValueType.STRING_LIST: ("string_list_val", "text", None),
    ValueType.BYTES_LIST: ("bytes_list_val", "bytes", None),
    ValueType.INT64_LIST: ("int64_list_val", "int64", None),
    ValueType.INT32_LIST: ("int32_list_val", "int32", None),
    ValueType.FLOAT_LIST: ("float_list_val", "float", "<f4"),
    ValueType.DOUBLE_LIST: ("double_list_val", "float", "<f8"),
}


def _list(vt: ValueType, arr: pa.Array) -> pa.Array | None:
    if vt not in _LISTS or not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return None
    field, kind, dtype = _LISTS[vt]
    offsets = arr.offsets.to_numpy().astype(np.int64)
    items = _plain(arr.values.slice(offsets[0], offsets[-1] - offsets[0]))
    offsets -= offsets[0]
    t = items.type
    if kind in ("text", "bytes"):
        if not (_is_text(t) if kind == "text" else _is_bytes(t)):
            return None
        pieces = delimited(_REPEATED, items.fill_null("" if kind == "text" else b""))
        piece_offsets, data = buffers(pieces)
        inner = binary(piece_offsets[offsets], data)  # a list's pieces are contiguous
    else:
        numeric = pa.types.is_floating(t) if kind == "float" else _int_type(t, int(kind[3:]))
        if not numeric or items.null_count:  # Feast's null elements: see its own conversion
            return None
        if dtype is None:
            payload_offsets, data = buffers(varints(items.to_numpy().astype(np.int64)))
            payload = binary(payload_offsets[offsets], data)
        else:
            x = items.to_numpy().astype(np.float64).astype(dtype)
            payload = binary(offsets * x.dtype.itemsize, x)
        inner = where(lengths(payload) > 0, delimited(_REPEATED, payload))  # packed; [] -> b""
    return where(_valid(arr), delimited(_tag(field, 2), inner))


def values(arr: pa.Array, vt: ValueType) -> pa.Array:
    """Serialized ``ValueProto`` of every row, as Feast's materialization writes them (b"" for
    nulls, and for NaN in a float column: ``pd.isnull``)."""
    arr = _plain(arr)
    encoded = _list(vt, arr) if vt in _LISTS else _scalar(vt, arr)
    if encoded is not None:
        return encoded
    protos = python_values_to_proto_values(arr.to_numpy(zero_copy_only=False), vt)
    return pa.array([p.SerializeToString() for p in protos], BIN)


_KEY_TYPES = {  # entity value type -> (arrow type check, fixed dtype or None for bytes)
    ValueType.STRING: (_is_text, None),
    ValueType.BYTES: (_is_bytes, None),
    ValueType.INT64: (lambda t: _int_type(t, 64), "<i8"),
    ValueType.INT32: (lambda t: _int_type(t, 32), "<i4"),
}


def entity_keys(
    columns: Sequence[pa.Array],
    names: Sequence[str],
    types: Sequence[ValueType],
    project: str,
    version: int = 3,
) -> pa.Array:
    """Feast's Redis key of every row: the serialized entity key (join keys sorted by name)
    plus the project name."""
    columns = [_plain(c) for c in columns]
    for name, column in zip(names, columns, strict=True):
        if column.null_count:
            raise ValueError(f"join key {name!r} has null values")
    supported = version == 3 and all(
        vt in _KEY_TYPES and _KEY_TYPES[vt][0](c.type) for c, vt in zip(columns, types, strict=True)
    )
    if not supported:
        protos = [
            python_values_to_proto_values(c.to_numpy(zero_copy_only=False), vt)
            for c, vt in zip(columns, types, strict=True)
        ]
        tail = project.encode()
        return pa.array(
            [
                serialize_entity_key(EntityKey(join_keys=list(names), entity_values=row), version)
                + tail
                for row in zip(*protos, strict=True)
            ],
            BIN,
        )
    order = sorted(range(len(names)), key=lambda i: names[i])
    parts: list[Part] = [struct.pack("<I", len(names))]
    for i in order:
        raw = names[i].encode()
        parts.append(struct.pack("<II", ValueType.STRING.value, len(raw)) + raw)
    for i in order:
        column, vt = columns[i], types[i]
        dtype = _KEY_TYPES[vt][1]
        if dtype is None:  # <type><length><bytes>
            data = column.cast(BIN)
            parts += [struct.pack("<I", vt.value), fixed(b"", lengths(data).astype("<u4")), data]
        else:  # <type><width><little-endian value>
            width = np.dtype(dtype).itemsize
            ints = column.to_numpy().astype(dtype)
            parts += [struct.pack("<II", vt.value, width), fixed(b"", ints)]
    return join(*parts, project.encode())


def timestamps(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Event timestamps as Feast stores them (truncated to microseconds, as its conversion
    through ``datetime`` does): nanoseconds since the epoch, and serialized ``Timestamp``s."""
    arr = _plain(arr)
    raw = arr.view(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
    unit = arr.type.unit
    micros = raw // 1000 if unit == "ns" else raw * {"s": 10**6, "ms": 10**3, "us": 1}[unit]
    seconds = np.floor_divide(micros, 10**6)
    nanos = (micros - seconds * 10**6) * 1000
    parts: list[Part] = [b""]  # proto3 leaves out zero seconds and zero nanos
    for tag, v in ((b"\x08", seconds), (b"\x10", nanos)):
        if v.any():
            parts.append(where(v != 0, join(tag, varints(v))))
    if len(parts) == 1:
        parts.append(binary(np.zeros(len(micros) + 1), b""))
    return seconds * 10**9 + nanos, join(*parts)


def epoch_nanos(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds since the epoch of a timestamp column (naive is UTC, as in Feast), and
    which rows are not null."""
    factor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[arr.type.unit]
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return arr.view(pa.int64()).fill_null(0).to_numpy().astype(np.int64) * factor, valid


def instant_nanos(when: datetime) -> int:
    """Nanoseconds since the epoch of a datetime (naive is UTC, as Feast's ``make_tzaware``)."""
    return int(pd.Timestamp(when if when.tzinfo else when.replace(tzinfo=timezone.utc)).value)


def stored_nanos(replies: Sequence[bytes | None]) -> np.ndarray:
    """Nanoseconds of stored ``Timestamp`` values (0 where there is none, as Feast reads it)."""
    out = np.zeros(len(replies), np.int64)
    for i, raw in enumerate(replies):
        if raw:
            ts = Timestamp.FromString(raw)
            out[i] = ts.seconds * 10**9 + ts.nanos
    return out


def command(*args: Part) -> pa.Array:
    """One RESP command per row (``hiredis.pack_command`` of the row's arguments)."""
    parts: list[Part] = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        else:
            sizes = pa.array(lengths(arg)).cast(pa.string())
            parts += [b"$", sizes, b"\r\n", arg, b"\r\n"]
    return join(*parts)
