"""Lists of recommendations as Feast's Redis ``HSET`` commands, a batch of rows at a time.

The two list values are protobuf wire format built without Python per row: a ``StringList``
of item ids is a slice of the items' pieces (``\x0a<len><id>``, encoded once per run) taken in
one Arrow ``take``, a packed ``FloatList`` is a slice of the chunk's float32 bytes; keys and
field names come from Feast's helpers (``_redis_key``, ``_mmh3``), and the timestamp,
``model_version`` and ``run_id`` values are one Feast ``ValueProto`` each, serialized once per
run. A batch of commands is one buffer (:class:`~recommender.featurestore.resp.CommandBatch`).
Pure: :mod:`recommender.featurestore.writer` sends them.

Example::

    enc = ListEncoder("proj", "user_recommendations_a", ["i1", "i2"], "v1", "run1", now)
    enc.encode(["u1"], np.array([[1, 0]]), np.array([[0.9, 0.5]])).count == 1
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from recommender.featurestore.resp import (
    BIN,
    Bulk,
    CommandBatch,
    batch,
    binary,
    command,
    field,
    fixed,
    join,
    lengths,
    ragged,
    varint,
    varints,
)

LIST_FEATURES = (
    "rec_item_ids",
    "rec_scores",
    "model_version",
    "run_id",
    "rec_sources",
    "rec_source_names",
)
MAX_SOURCES = 7  # a source mask below 128 is one varint byte: its packed list is the bytes
_STRING_LIST_TAG = b"\x62"  # Value.string_list_val: field 12, length-delimited
_INT32_LIST_TAG = b"\x6a"  # Value.int32_list_val: field 13, length-delimited
_FLOAT_LIST_TAG = b"\x82\x01"  # Value.float_list_val: field 16, length-delimited
_REPEATED_TAG = b"\x0a"  # StringList.val / FloatList.val: field 1, length-delimited


class ListEncoder:
    """HSET commands for one view's rows of one run (item ids from the model's vocabulary)."""

    def __init__(
        self,
        project: str,
        view: str,
        item_ids: Sequence[str],
        model_version: str,
        run_id: str,
        timestamp: datetime,
        join_key: str = "user_id",
        serialization_version: int = 3,
        source_names: Sequence[str] = ("als",),
    ) -> None:
        if not 1 <= len(source_names) <= MAX_SOURCES:
            raise ValueError(f"1 to {MAX_SOURCES} list sources, not {len(source_names)}")
        self.n_sources = len(source_names)
        self.project_bytes = project.encode()
        probe = _redis_key(
            project,
            EntityKey(join_keys=[join_key], entity_values=[Value(string_val="")]),
            serialization_version,
        )
        # v3 layout: <n keys><type><len><join key><value type><value len><value><project>;
        # everything before <value len> is the same for every user.
        self.key_prefix = probe[: len(probe) - len(self.project_bytes) - 4]
        self.fields = [_mmh3(f"{view}:{name}") for name in LIST_FEATURES]
        ts = Timestamp()
        ts.FromDatetime(timestamp)
        self.ts_field, self.ts_value = f"_ts:{view}".encode(), ts.SerializeToString()
        self.constant = [
            self.fields[2],
            Value(string_val=model_version).SerializeToString(),
            self.fields[3],
            Value(string_val=run_id).SerializeToString(),
            self.fields[5],
            Value(string_val=",".join(source_names)).SerializeToString(),
        ]
        raw = _texts([str(item) for item in item_ids])
        self.pieces = join(_REPEATED_TAG, varints(lengths(raw)), raw)  # one per item

    def key(self, user_id: str) -> bytes:
        raw = user_id.encode()
        return self.key_prefix + struct.pack("<I", len(raw)) + raw + self.project_bytes

    def item_list_value(self, rows: np.ndarray) -> bytes:
        inner = b"".join(self.pieces.take(pa.array(np.asarray(rows, np.int64))).to_pylist())
        return _STRING_LIST_TAG + varint(len(inner)) + inner

    @staticmethod
    def score_list_value(scores: np.ndarray) -> bytes:
        packed = np.ascontiguousarray(scores, dtype="<f4").tobytes()
        inner = _REPEATED_TAG + varint(len(packed)) + packed if packed else b""
        return _FLOAT_LIST_TAG + varint(len(inner)) + inner

    def encode(
        self,
        user_ids: Sequence[str] | np.ndarray | pa.Array,
        rows: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray | None = None,
    ) -> CommandBatch:
        """One ``HSET`` per user in one buffer; ``rows``/``scores`` are padded with -1/-inf
        (a row index below 0 is left out, with its score). ``sources``: per item, a bit mask
        of the ``source_names`` that proposed it (bit j: name j); without it the list is
        stored with no masks, meaning "every item from the one source named". About 2.5 us a
        100-item row, in batches of a few thousand rows (the working set stays in the CPU's
        cache)."""
        rows, scores = np.asarray(rows), np.asarray(scores)
        if rows.ndim != 2 or scores.shape != rows.shape or len(user_ids) != len(rows):
            raise ValueError(
                f"{len(user_ids)} users, rows {rows.shape} and scores {scores.shape} differ"
            )
        if sources is not None and np.asarray(sources).shape != rows.shape:
            raise ValueError(f"sources {np.asarray(sources).shape} and rows {rows.shape} differ")
        valid = rows >= 0
        counts = valid.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)])
        full = bool(valid.all())
        items = ragged(self.pieces, rows.ravel() if full else rows[valid], starts)
        floats = np.ascontiguousarray(scores.ravel() if full else scores[valid], dtype="<f4")
        packed = Bulk(counts * 4, (binary(starts * 4, floats.view(np.uint8)),))
        if sources is None:
            masks = Bulk(np.zeros(len(rows), dtype=np.int64), ())
        else:
            flat = np.asarray(sources).ravel() if full else np.asarray(sources)[valid]
            if flat.size and (flat.min() < 0 or flat.max() >= 1 << self.n_sources):
                raise ValueError(f"source masks must be in [0, {1 << self.n_sources})")
            data = np.ascontiguousarray(flat, dtype=np.uint8)
            masks = Bulk(counts.astype(np.int64), (binary(starts, data),))
        users = _texts(user_ids)
        size = lengths(users)
        key = (self.key_prefix, fixed(size.astype("<u4")), users, self.project_bytes)
        return batch(
            command(
                b"HSET",
                Bulk(len(self.key_prefix) + 4 + size + len(self.project_bytes), key),
                self.ts_field,
                self.ts_value,
                self.fields[0],
                field(_STRING_LIST_TAG, Bulk.of(items)),
                self.fields[1],
                field(_FLOAT_LIST_TAG, field(_REPEATED_TAG, packed, omit_empty=True)),
                self.fields[4],
                field(_INT32_LIST_TAG, field(_REPEATED_TAG, masks, omit_empty=True)),
                *self.constant,
            )
        )

    def batches(
        self,
        user_ids: Sequence[str] | np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        size: int,
        sources: np.ndarray | None = None,
    ) -> Iterator[CommandBatch]:
        """:meth:`encode` of ``size`` rows at a time, each encoded when it is asked for."""
        users = _texts(user_ids)
        for a in range(0, len(users), size):
            part = None if sources is None else sources[a : a + size]
            yield self.encode(users[a : a + size], rows[a : a + size], scores[a : a + size], part)

    def commands(
        self,
        user_ids: Sequence[str] | np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray | None = None,
    ) -> list[bytes]:
        """One packed ``HSET`` per user (:meth:`encode`, split into one ``bytes`` each)."""
        return self.encode(user_ids, rows, scores, sources).commands()


def _texts(values: Sequence[str] | np.ndarray | pa.Array) -> pa.Array:
    """UTF-8 bytes of every value (``str()`` of what is not a string), as ``large_binary``."""
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, pa.large_string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            values = pa.array([str(v) for v in values], pa.large_string())
    if values.null_count:
        raise ValueError("user or item ids must not be null")
    return values if values.type == BIN else values.cast(BIN)
