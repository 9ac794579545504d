"""Fast writes of precomputed lists into a Feast view, in Feast's own Redis layout.

Feast's ``write_to_online_store`` turns each row into protobuf messages in Python and, unless
``skip_dedup`` is set, reads every stored timestamp first: about 5,000 rows/s for 100-item
lists (``bench/write_bench.py``). The nightly job writes a million rows, so this module writes
the same bytes directly:

* keys and field names come from Feast's helpers (``_redis_key``, ``_mmh3``), computed once;
* the timestamp, ``model_version`` and ``run_id`` values are one Feast ``ValueProto`` each,
  serialized once per run;
* the two list values are protobuf wire format assembled from per-item pieces encoded once
  per run (``StringList`` of item ids, packed ``FloatList`` of scores);
* commands are packed by hiredis and sent pipelined, ``batch`` rows per round trip.

``tests/recommender/test_listwrite.py`` checks that every byte equals Feast's serialization and
that ``get_online_features`` reads the rows back. Only the blue/green slot that no API serves
is ever written (see :mod:`recommender.batch.publication`), so skipping Feast's timestamp check is
safe: a slot has one writer, the holder of the run lock.
"""

from __future__ import annotations

import multiprocessing
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

import hiredis
import numpy as np
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp
from redis.exceptions import RedisError

from recommender.errors import FeatureStoreUnavailable

LIST_FEATURES = ("rec_item_ids", "rec_scores", "model_version", "run_id")
_STRING_LIST_TAG = b"\x62"  # Value.string_list_val: field 12, length-delimited
_FLOAT_LIST_TAG = b"\x82\x01"  # Value.float_list_val: field 16, length-delimited
_REPEATED_TAG = b"\x0a"  # StringList.val / FloatList.val: field 1, length-delimited


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


_SMALL_VARINTS = [varint(i) for i in range(1 << 14)]


def _len(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < (1 << 14) else varint(n)


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
        self, user_ids: Sequence[str], rows: np.ndarray, scores: np.ndarray
    ) -> list[bytes]:
        """One packed ``HSET`` per user; ``rows``/``scores`` are padded with -1/-inf.

        Work is done per chunk where it can be (validity, item pieces, float bytes) and per
        row only where it must: about 30 us per 100-item row."""
        rows = np.asarray(rows)
        scores = np.ascontiguousarray(scores, dtype="<f4")
        full = (rows >= 0).all(axis=1)
        pieces = self.pieces[rows].tolist()  # row -1 maps to b"" (the last piece)
        f_items, f_scores = self.fields[0], self.fields[1]
        head = (self.ts_field, self.ts_value)
        constant, pack, key = self.constant, hiredis.pack_command, self.key
        out = []
        for i, user in enumerate(user_ids):
            score = scores[i] if full[i] else scores[i][rows[i] >= 0]
            items, floats = _string_list(pieces[i]), _float_list(score.tobytes())
            out.append(
                pack((b"HSET", key(str(user)), *head, f_items, items, f_scores, floats, *constant))
            )
        return out


def _string_list(pieces: Iterable[bytes]) -> bytes:
    """A ``Value`` with ``string_list_val``, from the items' encoded pieces."""
    inner = b"".join(pieces)
    return _STRING_LIST_TAG + _len(len(inner)) + inner


def _float_list(packed: bytes) -> bytes:
    """A ``Value`` with ``float_list_val``, from little-endian float32 bytes."""
    inner = _REPEATED_TAG + _len(len(packed)) + packed if packed else b""
    return _FLOAT_LIST_TAG + _len(len(inner)) + inner


class ListWriterPool:
    """Encode and send in ``workers`` processes: a Python writer is bound by its CPU time
    (encoding and command packing), and one process is one core. Each worker builds its own
    encoder and Redis connection once; a chunk is split between them."""

    def __init__(
        self, workers: int, redis_url: str, password: str | None, batch: int, **encoder: Any
    ) -> None:
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(redis_url, password, batch, encoder),
        )

    def write(self, user_ids: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> int:
        bounds = np.linspace(0, len(user_ids), self.workers + 1).astype(int)
        futures = [
            self.pool.submit(_write_rows, user_ids[a:b].tolist(), rows[a:b], scores[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            if b > a
        ]
        return sum(f.result() for f in futures)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_worker: dict[str, Any] = {}


def _init_worker(redis_url: str, password: str | None, batch: int, encoder: dict[str, Any]) -> None:
    import redis

    _worker["encoder"] = ListEncoder(**encoder)
    extra = {"password": password} if password else {}
    _worker["client"] = redis.Redis.from_url(redis_url, socket_timeout=60, **extra)
    _worker["batch"] = batch


def _write_rows(user_ids: list[str], rows: np.ndarray, scores: np.ndarray) -> int:
    commands = _worker["encoder"].commands(user_ids, rows, scores)
    return send_pipelined(_worker["client"], commands, _worker["batch"])


def send_pipelined(client: object, commands: Iterable[bytes], batch: int = 1000) -> int:
    """Send packed commands on one connection, ``batch`` per round trip; raise on any error
    reply. Returns the number of commands sent."""
    pool = client.connection_pool  # type: ignore[attr-defined]
    conn = pool.get_connection()
    sent = 0
    try:
        pending: list[bytes] = []
        for command in commands:
            pending.append(command)
            if len(pending) >= batch:
                sent += _round_trip(conn, pending)
                pending = []
        if pending:
            sent += _round_trip(conn, pending)
    except (OSError, RedisError) as exc:
        conn.disconnect()  # replies may be left unread: never reuse this connection
        raise FeatureStoreUnavailable(f"online store write failed: {exc}") from exc
    finally:
        pool.release(conn)
    return sent


def _round_trip(conn: object, pending: list[bytes]) -> int:
    conn.send_packed_command([b"".join(pending)], check_health=False)  # type: ignore[attr-defined]
    for _ in pending:
        conn.read_response(disable_decoding=True)  # type: ignore[attr-defined]  # raises on -ERR
    return len(pending)
