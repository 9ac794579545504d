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

import pickle
import struct
import threading
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import hiredis
import numpy as np
import redis
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp
from redis.exceptions import RedisError

from recommender.errors import FeatureStoreUnavailable
from recommender.lifeline import Child, start_child

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
        full: np.ndarray = np.asarray((rows >= 0).all(axis=1))
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
    encoder and Redis connection once; a chunk is split between them.

    The workers are helper processes of :mod:`recommender.lifeline`, all started here, by the
    constructing thread: they die with the job even when it is SIGKILLed (no orphans of a few
    hundred MB each), and they import only this module, not the job's ``__main__``."""

    def __init__(
        self, workers: int, redis_url: str, password: str | None, batch: int, **encoder: Any
    ) -> None:
        self.workers = workers
        self._children: list[Child] = []
        self._lock = threading.Lock()
        self._broken = ""
        self._set_up = False  # their set-up replies are read by the first write, so that
        # their start (imports, encoder) overlaps the job's scoring of the first chunk
        try:
            for _ in range(workers):
                child = start_child(__name__, "serve_worker")
                self._children.append(child)
                child.send((redis_url, password, batch, encoder))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children]

    def write(self, user_ids: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> int:
        bounds = np.linspace(0, len(user_ids), self.workers + 1).astype(int)
        with self._lock:
            if self._broken:
                raise BrokenProcessPool(self._broken)
            if not self._set_up:
                try:
                    for child in self._children:
                        self._reply(child)
                except Exception as exc:
                    self._broken = self._broken or f"a list writer could not start: {exc}"
                    raise
                self._set_up = True
            busy = []
            for child, a, b in zip(self._children, bounds[:-1], bounds[1:], strict=True):
                if b > a:
                    try:
                        child.send((user_ids[a:b].tolist(), rows[a:b], scores[a:b]))
                    except OSError as exc:  # it died; replies of the others stay unread
                        status = child.proc.wait()
                        self._broken = f"list writer process {child.pid} exited (status {status})"
                        raise BrokenProcessPool(self._broken) from exc
                    busy.append(child)
            replies, error = [], None
            for child in busy:  # every reply is read, so no worker is left out of step
                try:
                    replies.append(self._reply(child))
                except Exception as exc:  # noqa: BLE001 - re-raised below, after the others
                    error = error or exc
            if error is not None:
                raise error
            return sum(replies)

    def _reply(self, child: Child) -> int:
        try:
            kind, value, remote = child.recv()
        except (EOFError, OSError) as exc:
            status = child.proc.wait()
            self._broken = f"list writer process {child.pid} exited (status {status})"
            raise BrokenProcessPool(self._broken) from exc
        if kind == "error":
            value.__cause__ = _RemoteTraceback(remote)
            raise value
        return int(value)

    def close(self) -> None:
        children, self._children = self._children, []
        self._broken = self._broken or "the writer pool is closed"
        for child in children:  # all at once: each ends as soon as it reads end-of-file
            child.close_input()
        for child in children:
            child.close(timeout=10)


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a writer process (as ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0])


_worker: dict[str, Any] = {}


def serve_worker(inbox: Connection, outbox: Connection) -> None:
    """A writer process: set up from the first message, then one reply per chunk, until the
    pool closes the pipe."""
    message = inbox.recv()
    while True:
        try:
            if "client" in _worker:
                result = _write_rows(*message)
            else:
                _init_worker(*message)
                result = 0
            reply: tuple[str, Any, str] = ("ok", result, "")
        except Exception as exc:  # noqa: BLE001 - the pool re-raises it in the parent
            reply = ("error", exc, traceback.format_exc())
        try:
            outbox.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError):
            error = RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")
            outbox.send(("error", error, reply[2]))
        try:
            message = inbox.recv()
        except EOFError:
            return


def _init_worker(redis_url: str, password: str | None, batch: int, encoder: dict[str, Any]) -> None:
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
