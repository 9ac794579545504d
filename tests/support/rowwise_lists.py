"""The list encoder as it was before the vectorised one (git 926a52a): one ``HSET`` packed by
hiredis per row, about 20 us of Python a 100-item row. Kept as the byte-for-byte reference of
``tests/recommender/featurestore/test_writer.py`` and as the baseline of
``bench/write_bench.py``. The source masks and names (added later) are built with Feast's
protobuf classes, one ``Value`` per row."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import datetime

import hiredis
import numpy as np
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Int32List, Value
from google.protobuf.timestamp_pb2 import Timestamp

from recommender.featurestore.listencoder import LIST_FEATURES  # the Feast field names
from recommender.featurestore.resp import varint

_STRING_LIST_TAG = b"\x62"
_FLOAT_LIST_TAG = b"\x82\x01"
_REPEATED_TAG = b"\x0a"
_SMALL_VARINTS = [varint(i) for i in range(1 << 14)]


def _len(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < (1 << 14) else varint(n)


class RowwiseListEncoder:
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
        pieces = []
        for item in item_ids:
            raw = str(item).encode()
            pieces.append(_REPEATED_TAG + _len(len(raw)) + raw)
        self.pieces = np.array(pieces + [b""], dtype=object)  # row -1 -> nothing

    def key(self, user_id: str) -> bytes:
        raw = user_id.encode()
        return self.key_prefix + struct.pack("<I", len(raw)) + raw + self.project_bytes

    def item_list_value(self, rows: np.ndarray) -> bytes:
        return _string_list(self.pieces[rows])

    @staticmethod
    def score_list_value(scores: np.ndarray) -> bytes:
        return _float_list(np.ascontiguousarray(scores, dtype="<f4").tobytes())

    def commands(
        self,
        user_ids: Sequence[str],
        rows: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray | None = None,
    ) -> list[bytes]:
        """One packed ``HSET`` per user; ``rows``/``scores`` are padded with -1/-inf.

        Work is done per chunk where it can be (validity, item pieces, float bytes) and per
        row only where it must: about 30 us per 100-item row."""
        rows = np.asarray(rows)
        scores = np.ascontiguousarray(scores, dtype="<f4")
        full: np.ndarray = np.asarray((rows >= 0).all(axis=1))
        pieces = self.pieces[rows].tolist()  # row -1 maps to b"" (the last piece)
        f_items, f_scores = self.fields[0], self.fields[1]
        head = (self.ts_field, self.ts_value)
        constant, pack, key = self.constant, hiredis.pack_command, self.key
        out = []
        for i, user in enumerate(user_ids):
            score = scores[i] if full[i] else scores[i][rows[i] >= 0]
            items, floats = _string_list(pieces[i]), _float_list(score.tobytes())
            masks = [] if sources is None else [int(m) for m in sources[i][rows[i] >= 0]]
            source = Value(int32_list_val=Int32List(val=masks)).SerializeToString()
            args = (f_items, items, f_scores, floats, self.fields[4], source, *constant)
            out.append(pack((b"HSET", key(str(user)), *head, *args)))
        return out


def _string_list(pieces: Iterable[bytes]) -> bytes:
    """A ``Value`` with ``string_list_val``, from the items' encoded pieces."""
    inner = b"".join(pieces)
    return _STRING_LIST_TAG + _len(len(inner)) + inner


def _float_list(packed: bytes) -> bytes:
    """A ``Value`` with ``float_list_val``, from little-endian float32 bytes."""
    inner = _REPEATED_TAG + _len(len(packed)) + packed if packed else b""
    return _FLOAT_LIST_TAG + _len(len(inner)) + inner
