"""Fast writes of precomputed lists into a Feast view, in Feast's own Redis layout.

Feast's ``write_to_online_store`` turns each row into protobuf messages in Python and, unless
``skip_dedup`` is set, reads every stored timestamp first: about 7,000 rows/s for 100-item
lists (``bench/write_bench.py``). The nightly job writes a million rows, so the same bytes are
built here a batch of rows at a time by :class:`~recommender.featurestore.listencoder.ListEncoder`
(Arrow and numpy kernels, no Python per row) and sent with one ``sendall`` per batch while the
next batch is encoded, replies read by hiredis; ``ListWriterPool`` splits a chunk between
processes.

``tests/recommender/featurestore/test_writer.py`` checks that every byte equals Feast's
serialization (and the earlier per-row encoder's) and that ``get_online_features`` reads the rows
back. Only the blue/green slot that no API serves is ever written (see
:mod:`recommender.batch.publication`), so skipping Feast's timestamp check is safe: a slot has
one writer, the holder of the run lock.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from typing import Any

import hiredis
import numpy as np
import pyarrow as pa
import redis
from redis.exceptions import RedisError, ResponseError

from recommender.childmap import RemoteTraceback, send_reply
from recommender.errors import FeatureStoreUnavailable
from recommender.featurestore.listencoder import ListEncoder as ListEncoder
from recommender.featurestore.resp import CommandBatch
from recommender.featurestore.resp import varint as varint  # encode.py imports it from here
from recommender.lifeline import Child, start_child


class ListWriterPool:
    """Encode and send in ``workers`` processes (``0``: in the calling thread, whose encoding
    kernels release the GIL). Each worker builds its own encoder and Redis connection once; a
    chunk is split between them.

    The workers are helper processes of :mod:`recommender.lifeline`, all started here, by the
    constructing thread: they die with the job even when it is SIGKILLed (no orphans of a few
    hundred MB each), and they import only this module, not the job's ``__main__``."""

    def __init__(
        self, workers: int, redis_url: str, password: str | None, batch: int, **encoder: Any
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, not {workers}")
        self.workers = workers
        self._children: list[Child] = []
        self._lock = threading.Lock()
        self._broken = ""
        self._local = _Writer(redis_url, password, batch, encoder) if workers == 0 else None
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

    def write(
        self,
        user_ids: np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray | None = None,
    ) -> int:
        """Write a chunk's lists (``sources``: the per-item source masks of
        :meth:`ListEncoder.encode`); returns the number of rows written."""
        bounds = np.linspace(0, len(user_ids), self.workers + 1).astype(int)
        with self._lock:
            if self._broken:
                raise BrokenProcessPool(self._broken)
            if self._local is not None:
                return self._local.write(user_ids, rows, scores, sources)
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
                        part = None if sources is None else sources[a:b]
                        child.send((user_ids[a:b].tolist(), rows[a:b], scores[a:b], part))
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
            value.__cause__ = RemoteTraceback(remote)
            raise value
        return int(value)

    def close(self) -> None:
        children, self._children = self._children, []
        self._broken = self._broken or "the writer pool is closed"
        if self._local is not None:
            self._local.client.close()
        for child in children:  # all at once: each ends as soon as it reads end-of-file
            child.close_input()
        for child in children:
            child.close(timeout=10)


class _Writer:
    """One encoder and one Redis connection: a worker process's, or the in-process pool's."""

    def __init__(
        self, redis_url: str, password: str | None, batch: int, encoder: dict[str, Any]
    ) -> None:
        self.encoder = ListEncoder(**encoder)
        extra = {"password": password} if password else {}
        self.client = redis.Redis.from_url(redis_url, socket_timeout=60, **extra)
        self.batch = batch

    def write(
        self,
        user_ids: Sequence[str] | np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray | None = None,
    ) -> int:
        batches = self.encoder.batches(user_ids, rows, scores, self.batch, sources)
        return send_batches(self.client, batches)


_worker: dict[str, _Writer] = {}


def serve_worker(inbox: Connection, outbox: Connection) -> None:
    """A writer process: set up from the first message, then one reply per chunk, until the
    pool closes the pipe."""
    message = inbox.recv()
    while True:
        try:
            if "writer" in _worker:
                result = _worker["writer"].write(*message)
            else:
                _worker["writer"] = _Writer(*message)
                result = 0
            reply: tuple[str, Any, str] = ("ok", result, "")
        except Exception as exc:  # noqa: BLE001 - the pool re-raises it in the parent
            reply = ("error", exc, traceback.format_exc())
        send_reply(outbox, reply)
        try:
            message = inbox.recv()
        except EOFError:
            return


def send_batches(client: object, batches: Iterable[CommandBatch]) -> int:
    """Send batches of packed commands on one connection, one ``sendall`` each; raise
    :class:`FeatureStoreUnavailable` on any error reply. Returns the number of commands.

    A batch's replies are read after the next batch is sent, so that the encoding of a batch
    (pulled from ``batches``) overlaps Redis's work on the one before."""
    pool = client.connection_pool  # type: ignore[attr-defined]
    conn = pool.get_connection()
    sent, waiting, reader = 0, 0, hiredis.Reader()
    try:
        for packed in batches:
            if packed.count:
                conn.send_packed_command([packed.data], check_health=False)
            _read_replies(conn, reader, waiting)
            waiting = packed.count
            sent += packed.count
        _read_replies(conn, reader, waiting)
    except (OSError, RedisError, hiredis.ProtocolError) as exc:
        conn.disconnect()  # replies may be left unread: never reuse this connection
        raise FeatureStoreUnavailable(f"online store write failed: {exc}") from exc
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    return sent


def _read_replies(conn: object, reader: hiredis.Reader, count: int) -> None:
    """Read ``count`` replies straight from the connection's socket (the connection's own
    parser has nothing buffered: every reply it was sent is read)."""
    sock = conn._sock  # type: ignore[attr-defined]
    while count:
        reply = reader.gets()
        if reply is False:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the online store closed the connection")
            reader.feed(data)
        elif isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        else:
            count -= 1


def send_pipelined(client: object, commands: Iterable[bytes], batch: int = 1000) -> int:
    """Send packed commands on one connection, ``batch`` per round trip; raise on any error
    reply. Returns the number of commands sent."""
    return send_batches(client, _grouped(commands, batch))


def _grouped(commands: Iterable[bytes], size: int) -> Iterator[CommandBatch]:
    pending: list[bytes] = []
    for packed in commands:
        pending.append(packed)
        if len(pending) >= size:
            yield _batch_of(pending)
            pending = []
    if pending:
        yield _batch_of(pending)


def _batch_of(commands: list[bytes]) -> CommandBatch:
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in commands])])
    return CommandBatch(pa.py_buffer(b"".join(commands)), offsets)
