"""The column-at-a-time encoder writes Feast's own bytes: every supported type against Feast's
``python_values_to_proto_values``, keys against ``_redis_key``, timestamps against the path
Feast's materialization takes (``pd.to_datetime`` -> ``datetime`` -> ``Timestamp``), commands
against ``hiredis.pack_command``."""

from __future__ import annotations

import warnings

import hiredis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feast import utils
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from recommender.featurestore import encode
from recommender.featurestore.writer import varint

VT = ValueType


def feast_bytes(arr: pa.Array, vt: ValueType) -> list[bytes]:
    """What Feast's materialization writes for a column (``_columns_to_proto_values``)."""
    protos = python_values_to_proto_values(arr.to_numpy(zero_copy_only=False), vt)
    return [p.SerializeToString() for p in protos]


@pytest.fixture
def vectorised_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the encoder falls back to Feast's per-row conversion."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("fell back to Feast's per-row conversion")

    monkeypatch.setattr(encode, "python_values_to_proto_values", refuse)


def test_varints_match_protobuf() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            np.arange(-3, 300),
            [2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**35, 16383, 16384],
            rng.integers(-(2**62), 2**62, 500),
        ]
    ).astype(np.int64)
    got = encode.varints(values).to_pylist()
    assert got == [varint(int(v) % 2**64) for v in values]
    assert got[5] == Value(int64_val=int(values[5])).SerializeToString()[1:]
    assert encode.varints(np.arange(5)).to_pylist() == [bytes([i]) for i in range(5)]
    assert encode.varints(np.array([], np.int64)).to_pylist() == []


SCALARS = [
    (VT.STRING, pa.array(["a", None, "", "héllo wörld ✓", "x" * 300])),
    (VT.STRING, pa.array(["a", "b", None], pa.large_string())),
    (VT.STRING, pa.array(["a", "b", "a", None]).dictionary_encode()),
    (VT.BYTES, pa.array([b"\x00\xff", None, b""])),
    (VT.INT64, pa.array([0, -1, 2**40, -(2**63), 2**63 - 1, 127, 128], pa.int64())),
    (VT.INT64, pa.array([0, -1, None, 2**40, 127, 128], pa.int64())),  # (as floats in Feast)
    (VT.INT64, pa.array([1, None, 3], pa.int32())),
    (VT.INT32, pa.array([0, -5, None, 2**31 - 1, -(2**31)], pa.int32())),
    (VT.FLOAT, pa.array([0.0, -1.5, None, float("nan"), 3.4e38, 1e-40], pa.float32())),
    (VT.FLOAT, pa.array([0.1, None, 1 / 3, float("nan"), -2.5e10], pa.float64())),
    (VT.FLOAT, pa.array([3, None, -7], pa.int64())),
    (VT.DOUBLE, pa.array([0.1, None, 1 / 3, float("nan"), -0.0], pa.float64())),
    (VT.BOOL, pa.array([True, False, None, True])),
    (VT.BOOL, pa.array([True, False, False])),
]

LISTS = [
    (VT.STRING_LIST, pa.array([["a", "bb"], None, [], ["héllo"], ["x" * 200] * 3])),
    (VT.STRING_LIST, pa.array([["a", None, "c"], ["d"]])),  # Feast's default for a null item
    (VT.STRING_LIST, pa.array([[], []], pa.list_(pa.string()))),
    (VT.STRING_LIST, pa.array([["a"], ["b", "c"]], pa.large_list(pa.large_string()))),
    (VT.BYTES_LIST, pa.array([[b"\x00"], None, [b"", b"ab"]])),
    (VT.INT64_LIST, pa.array([[1, -2, 2**40], None, [], [0]], pa.list_(pa.int64()))),
    (VT.INT32_LIST, pa.array([[1, -2], [2**31 - 1], []], pa.list_(pa.int32()))),
    (VT.FLOAT_LIST, pa.array([[0.5, -1.25], None, [], [float("nan")]], pa.list_(pa.float32()))),
    (VT.FLOAT_LIST, pa.array([[0.1, 1 / 3], [2.0]], pa.list_(pa.float64()))),
    (VT.DOUBLE_LIST, pa.array([[0.1, 1 / 3], None, []], pa.list_(pa.float64()))),
]


@pytest.mark.parametrize(("vt", "arr"), SCALARS + LISTS)
def test_values_match_feast(vt: ValueType, arr: pa.Array, vectorised_only: None) -> None:
    expected = feast_bytes_unpatched(arr, vt)
    assert encode.values(arr, vt).to_pylist() == expected
    assert encode.values(arr.slice(1), vt).to_pylist() == expected[1:]  # sliced columns


def feast_bytes_unpatched(arr: pa.Array, vt: ValueType) -> list[bytes]:
    plain = arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
    return feast_bytes(plain, vt)


def test_other_types_use_feasts_conversion() -> None:
    arr = pa.array([[True, False], None, []])  # BOOL_LIST: not vectorised here
    assert encode.values(arr, VT.BOOL_LIST).to_pylist() == feast_bytes(arr, VT.BOOL_LIST)
    ints = pa.array([1, 2, 3], pa.int64())  # a string feature stored as integers: str(x)
    assert encode.values(ints, VT.STRING).to_pylist() == feast_bytes(ints, VT.STRING)
    ts = pa.array([0, 86400 * 10**9], pa.timestamp("ns"))
    assert encode.values(ts, VT.UNIX_TIMESTAMP).to_pylist() == feast_bytes(ts, VT.UNIX_TIMESTAMP)


def test_random_columns_match_feast(rng: np.random.Generator, vectorised_only: None) -> None:
    n = 2000
    words = np.array(["", "a", "bc", "déf", "x" * 150])
    null = rng.random(n) < 0.1
    strings = pa.array(words[rng.integers(0, len(words), n)], mask=null)
    ints = pa.array(rng.integers(-(2**40), 2**40, n), mask=null)
    floats = pa.array(rng.normal(size=n).astype(np.float32), mask=null)
    sizes = rng.integers(0, 30, n)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    items = pa.array(words[rng.integers(0, len(words), offsets[-1])])
    lists = pa.ListArray.from_arrays(pa.array(offsets), items, mask=pa.array(null))
    scores = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(rng.random(offsets[-1]).astype(np.float32))
    )
    cases = [
        (VT.STRING, strings),
        (VT.INT64, ints),
        (VT.FLOAT, floats),
        (VT.STRING_LIST, lists),
        (VT.FLOAT_LIST, scores),
    ]
    for vt, arr in cases:
        assert encode.values(arr, vt).to_pylist() == feast_bytes_unpatched(arr, vt), vt


@pytest.mark.parametrize(
    ("names", "types", "columns"),
    [
        (["user_id"], [VT.STRING], [pa.array(["u1", "", "ünï", "x" * 300])]),
        (["item_id"], [VT.INT64], [pa.array([1, -1, 2**40, 0], pa.int64())]),
        (["n"], [VT.INT32], [pa.array([1, -1, 7, 0], pa.int32())]),
        (["n"], [VT.BYTES], [pa.array([b"\x00", b"", b"ab", b"c"])]),
        (  # compound keys are sorted by name
            ["user_id", "item_id"],
            [VT.STRING, VT.INT64],
            [pa.array(["a", "b", "c", "d"]), pa.array([1, 2, 3, 4], pa.int64())],
        ),
        (["user_id"], [VT.STRING], [pa.array([1, 2, 3, 4], pa.int64())]),  # str(x) (Feast's)
    ],
)
def test_entity_keys_match_feast(
    names: list[str], types: list[ValueType], columns: list[pa.Array]
) -> None:
    protos = [
        python_values_to_proto_values(c.to_numpy(zero_copy_only=False), vt)
        for c, vt in zip(columns, types, strict=True)
    ]
    expected = [
        _redis_key("proj_x", EntityKey(join_keys=names, entity_values=row), 3)
        for row in zip(*protos, strict=True)
    ]
    assert encode.entity_keys(columns, names, types, "proj_x").to_pylist() == expected


def test_null_join_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="null"):
        encode.entity_keys([pa.array(["a", None])], ["user_id"], [VT.STRING], "p")


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_timestamps_match_feasts_conversion(unit: str, tz: str | None) -> None:
    stamps = pd.to_datetime(
        [
            "2024-01-01T00:00:00",
            "1970-01-01T00:00:00",
            "1969-12-31T23:59:59.999999999",
            "2026-05-17T12:34:56.123456789",
            "1901-02-03T04:05:06.5",
        ],
        format="ISO8601",
    )
    arr = pa.array(stamps.as_unit("ns")).cast(pa.timestamp(unit), safe=False)  # truncates
    if tz:
        arr = arr.cast(pa.timestamp(unit, tz))
    nanos, raw = encode.timestamps(arr)
    expected, expected_nanos = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns that nanoseconds are dropped
        for value in pd.to_datetime(arr.to_numpy(zero_copy_only=False)):
            ts = Timestamp()
            ts.FromDatetime(utils.make_tzaware(utils._coerce_datetime(value)))
            expected.append(ts.SerializeToString())
            expected_nanos.append(ts.seconds * 10**9 + ts.nanos)
    assert raw.to_pylist() == expected
    assert nanos.tolist() == expected_nanos
    assert encode.stored_nanos([*expected, None, b""]).tolist() == [*expected_nanos, 0, 0]


def test_commands_are_resp() -> None:
    keys = pa.array([b"k1", b"", b"k\r\n3"], encode.BIN)
    vals = pa.array(["v", "wörld", ""])
    got = encode.command(b"HSET", keys, b"_ts:view", vals).to_pylist()
    assert got == [
        hiredis.pack_command((b"HSET", k, b"_ts:view", v.encode()))
        for k, v in zip(keys.to_pylist(), vals.to_pylist(), strict=True)
    ]
    offsets, data = encode.buffers(encode.command(b"HGET", keys, b"f"))
    assert data.to_pybytes()[offsets[0] : offsets[-1]] == b"".join(
        hiredis.pack_command((b"HGET", k, b"f")) for k in keys.to_pylist()
    )
