"""The warm path's one Redis command, without redis-py's per-call machinery.

redis-py's asyncio client costs, per ``HMGET``, a pool checkout, command packing of every
argument, retry and timeout wrappers and a connection health check (about a fifth of the warm
path's samples, docs/benchmarks.md). The warm path sends one command shape: ``HMGET <key>
<the same fields>``. :class:`LeanReader` keeps one connection per worker, writes the command
from a prepacked tail (only the key changes), and lets concurrent requests share the
connection: replies arrive in the order the commands were written (RESP), so each request
waits on its own future in a FIFO, parsed by hiredis.

A timeout closes the connection (its replies can no longer be matched to requests) and fails
every request waiting on it; the next request reconnects. Errors are ``ConnectionError`` /
``TimeoutError`` (``OSError``), which the online store's circuit breaker already handles.
One Redis only (``redis://``): TLS and Redis Cluster stay with redis-py.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis


def _bulk(arg: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def command(*args: bytes) -> bytes:
    """One RESP command. Example: ``command(b"PING") == b"*1\\r\\n$4\\r\\nPING\\r\\n"``."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting:
                break  # a reply nobody waits for: only after a timeout, and then we close
            future = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ConnectionError(f"redis: {reply}"))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(ConnectionError(f"redis connection lost: {exc or 'closed'}"))

    def fail(self, exc: Exception) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class LeanReader:
    """``HMGET key <fields>`` over one pipelined connection to ``url`` (``redis://``).

    Example: ``await LeanReader("redis://127.0.0.1:6379/0", [b"f1"], 0.1).hmget(b"k")`` ->
    ``[b"v1" or None]``.
    """

    def __init__(
        self, url: str, fields: Sequence[bytes], timeout: float, password: str | None = None
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis" or not parsed.hostname:
            raise ValueError(f"LeanReader speaks plain redis:// only, not {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 6379
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self.password = password or (unquote(parsed.password) if parsed.password else None)
        self.username = unquote(parsed.username) if parsed.username else None
        self.timeout = timeout
        self.head = b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields))
        self.tail = b"".join(_bulk(f) for f in fields)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.closed:
            return proto
        if self._connecting is None:  # one connect for every request waiting on it
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(_Protocol, self.host, self.port), self.timeout
        )
        setup = []
        if self.password:
            auth = (self.username.encode(),) if self.username else ()
            setup.append(command(b"AUTH", *auth, self.password.encode()))
        if self.db:
            setup.append(command(b"SELECT", str(self.db).encode()))
        for cmd in setup:
            await self._call(proto, cmd)
        self._proto = proto
        return proto

    async def _call(self, proto: _Protocol, data: bytes) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        proto.waiting.append(future)
        assert proto.transport is not None
        proto.transport.write(data)
        timer = loop.call_later(self.timeout, self._expire, proto, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, proto: _Protocol, future: asyncio.Future[Any]) -> None:
        if future.done():
            return
        error = TimeoutError(f"redis did not answer within {self.timeout * 1000:g} ms")
        proto.fail(error)  # every reply after this one would be matched to the wrong request
        proto.closed = True
        if proto.transport is not None:
            proto.transport.close()
        if self._proto is proto:
            self._proto = None

    async def hmget(self, key: bytes) -> list[bytes | None]:
        proto = await self._connection()
        return await self._call(proto, self.head + _bulk(key) + self.tail)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
