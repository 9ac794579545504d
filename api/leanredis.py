"""The warm path's one Redis command, without redis-py's per-call machinery.

redis-py's asyncio client costs, per ``HMGET``, a pool checkout, command packing of every
argument, retry and timeout wrappers and a connection health check (about a fifth of the warm
path's samples, docs/benchmarks.md). The warm path sends one command shape: ``HMGET <key>
<the same fields>``. :class:`LeanReader` keeps one connection per worker, writes the command
from a prepacked tail (only the key changes), and lets concurrent requests share the
connection: replies arrive in the order the commands were written (RESP), so each request
waits on its own future in a FIFO, parsed by hiredis.

A timeout closes the connection (its replies can no longer be matched to requests) and fails
every request waiting on it; the next request reconnects.

With ``cache_entries`` > 0 the replies are kept in memory, invalidated by Redis itself (RESP3
``CLIENT TRACKING``: Redis remembers which keys this connection read and pushes an
``invalidate`` message on the same connection when one changes: a list written for the user,
the user's events pushed, a flush). Replies and pushes arrive in order on the connection and
are applied in that order, so a reply is never cached after the invalidation that follows it;
a lost or timed-out connection drops the whole cache (the tracking went with it), and no reply
is used after ``MAX_AGE_SECONDS``. The cache holds raw replies: decoding (and the views' ttl)
happens per request, as without it.

Errors are ``ConnectionError`` / ``TimeoutError`` (``OSError``), which the online store's
circuit breaker already handles. One Redis only (``redis://``): TLS and Redis Cluster stay with
redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

# A cached reply is used for at most this long, whatever: a bound on staleness should an
# invalidation ever be lost without the connection dropping (a proxy that failed over, say).
MAX_AGE_SECONDS = 30.0


def _bulk(arg: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def command(*args: bytes) -> bytes:
    """One RESP command. Example: ``command(b"PING") == b"*1\\r\\n$4\\r\\nPING\\r\\n"``."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


class _Protocol(asyncio.Protocol):
    def __init__(self, cache: dict[bytes, Any] | None = None) -> None:
        self.reader = hiredis.Reader()
        # each command's future, and the key whose reply is cached when it arrives
        self.waiting: collections.deque[tuple[asyncio.Future[Any], bytes | None]]
        self.waiting = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.cache = cache

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self.fd: int | None = sock.fileno() if sock is not None else None

    def drain(self) -> None:
        """Apply what Redis has already sent (invalidations), without waiting for the loop:
        one non-blocking read of the (non-blocking) socket before a cached reply is used."""
        if self.fd is None or self.closed:
            return
        try:
            data = os.read(self.fd, 1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.connection_lost(exc)
            return
        if data:
            self.data_received(data)
        else:
            self.connection_lost(None)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if isinstance(reply, hiredis.PushNotification):
                self._pushed(reply)
                continue
            if not self.waiting:
                break  # a reply nobody waits for: only after a timeout, and then we close
            future, key = self.waiting.popleft()
            if isinstance(reply, hiredis.ReplyError):
                if not future.done():
                    future.set_exception(ConnectionError(f"redis: {reply}"))
                continue
            if key is not None and self.cache is not None:
                # before any invalidation behind it is read; stamped for MAX_AGE_SECONDS
                self.cache[key] = (time.monotonic(), reply)
            if not future.done():
                future.set_result(reply)

    def _pushed(self, push: list[Any]) -> None:
        if self.cache is None or not push or push[0] != b"invalidate":
            return
        keys = push[1] if len(push) > 1 else None
        if keys is None:  # the server flushed a database, or its tracking table evicted keys
            self.cache.clear()
        else:
            for key in keys:
                self.cache.pop(key, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail(ConnectionError(f"redis connection lost: {exc or 'closed'}"))

    def fail(self, exc: Exception) -> None:
        if self.cache is not None:
            self.cache.clear()  # no invalidations arrive any more for what it holds
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class LeanReader:
    """``HMGET key <fields>`` over one pipelined connection to ``url`` (``redis://``).

    Example: ``await LeanReader("redis://127.0.0.1:6379/0", [b"f1"], 0.1).hmget(b"k")`` ->
    ``[b"v1" or None]``.
    """

    def __init__(
        self,
        url: str,
        fields: Sequence[bytes],
        timeout: float,
        password: str | None = None,
        cache_entries: int = 0,
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
        self.cache_entries = cache_entries
        self.cache: dict[bytes, Any] | None = {} if cache_entries > 0 else None
        self.hits = 0

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
        cache = self.cache
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(cache), self.host, self.port), self.timeout
        )
        setup = []
        if self.password:
            auth = (self.username or "default").encode(), self.password.encode()
            if cache is not None:
                setup.append(command(b"HELLO", b"3", b"AUTH", *auth))
            else:
                setup.append(command(b"AUTH", *auth))
        elif cache is not None:
            setup.append(command(b"HELLO", b"3"))  # RESP3: invalidations on this connection
        if self.db:
            setup.append(command(b"SELECT", str(self.db).encode()))
        if cache is not None:
            cache.clear()
            setup.append(command(b"CLIENT", b"TRACKING", b"ON"))
        for cmd in setup:
            await self._call(proto, cmd)
        self._proto = proto
        return proto

    async def _call(self, proto: _Protocol, data: bytes, key: bytes | None = None) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        proto.waiting.append((future, key))
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
        cache = self.cache
        if cache is not None:
            proto.drain()  # invalidations already sent apply before this read
            if proto.closed:  # the drain found it closed: a new one (and an empty cache)
                proto = await self._connection()
            got = cache.get(key)
            if got is not None and time.monotonic() - got[0] < MAX_AGE_SECONDS:
                self.hits += 1
                return got[1]  # type: ignore[no-any-return]
            while len(cache) >= self.cache_entries:  # the oldest entries go first
                del cache[next(iter(cache))]
        return await self._call(proto, self.head + _bulk(key) + self.tail, key)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
