"""The wire kernels produce the bytes of protobuf and hiredis, row by row."""

from __future__ import annotations

import hiredis
import numpy as np
import pyarrow as pa
import pytest
from feast.protos.feast.types.Value_pb2 import FloatList, Value

from recommender.featurestore.resp import (
    BIN,
    Bulk,
    batch,
    binary,
    buffers,
    command,
    decimals,
    field,
    join,
    ragged,
    varint,
    varints,
)

EDGES = [0, 1, 127, 128, 300, 16383, 16384, 2_097_151, 2_097_152, 1 << 35, (1 << 63) - 1]


def test_varints_equal_protobufs_for_every_width() -> None:
    for values in (EDGES, [0, 5, 127], [128, 16383, 7], []):
        got = varints(np.array(values, np.int64)).to_pylist()
        assert got == [varint(v) for v in values]
    assert varint(300) == Value(int64_val=300).SerializeToString()[1:]
    negative = Value(int64_val=-1).SerializeToString()[1:]  # ten bytes, as protobuf writes it
    assert varints(np.array([3, -1])).to_pylist() == [b"\x03", negative]


def test_decimals_have_no_leading_zeros_or_padding() -> None:
    values = np.array([0, 7, 10, 99, 100, 1379, 10**12])
    assert decimals(values).to_pylist() == [str(v).encode() for v in values]


def test_a_column_command_equals_hiredis_pack_command() -> None:
    rng = np.random.default_rng(3)
    keys = [bytes(rng.integers(0, 256, n).astype(np.uint8)) for n in (0, 1, 9, 10, 99, 100, 1000)]
    values = [b"\r\n" * n for n in (5, 0, 50, 1, 500, 3, 2)]
    got = command(b"HSET", Bulk.of(pa.array(keys, BIN)), b"f", Bulk.of(pa.array(values, BIN)))
    expected = [
        hiredis.pack_command((b"HSET", k, b"f", v)) for k, v in zip(keys, values, strict=True)
    ]
    assert got.to_pylist() == expected
    packed = batch(got)
    assert packed.count == len(keys) and packed.commands() == expected
    assert packed.data.to_pybytes() == b"".join(expected)


def test_a_bulk_of_parts_is_joined_once_with_its_size() -> None:
    ids = pa.array([b"a", b"", b"xyz"], BIN)
    arg = Bulk(np.array([3, 2, 5]), (b"<", ids, b">"))
    assert command(arg).to_pylist() == [
        hiredis.pack_command((v,)) for v in (b"<a>", b"<>", b"<xyz>")
    ]


def test_a_packed_field_is_left_out_when_empty_as_protobuf_does() -> None:
    rows = [[0.5, -1.25], [], [3.0] * 5000]  # 20,000 bytes: a three-byte length
    floats = np.concatenate([np.array(r, "<f4") for r in rows])
    starts = np.cumsum([0] + [len(r) for r in rows])
    payload = Bulk(np.diff(starts) * 4, (binary(starts * 4, floats.view(np.uint8)),))
    value = field(b"\x82\x01", field(b"\x0a", payload, omit_empty=True))
    got = join(*value.parts).to_pylist()
    assert got == [Value(float_list_val=FloatList(val=r)).SerializeToString() for r in rows]
    assert [len(g) for g in got] == value.size.tolist()


def test_ragged_rows_are_slices_of_one_take() -> None:
    pieces = pa.array([b"a", b"bb", b"", "é".encode()], BIN)
    index = np.array([1, 0, 3, 3, 2, 1])
    starts = np.array([0, 2, 2, 6])
    assert ragged(pieces, index, starts).to_pylist() == [b"bba", b"", "éé".encode() + b"bb"]
    offsets, _ = buffers(ragged(pieces, index[2:], np.array([0, 4])))
    assert offsets.tolist()[-1] - offsets.tolist()[0] == 6


def test_join_merges_constants_and_rejects_nulls() -> None:
    col = pa.array([b"x", b"yy"], BIN)
    assert join(b"a", b"", b"b", col, b"c").to_pylist() == [b"abxc", b"abyyc"]
    with pytest.raises(ValueError, match="null"):
        buffers(pa.array([b"x", None], BIN))
