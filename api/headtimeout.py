"""A time limit on reading a request's head, which uvicorn does not have.

uvicorn times out idle keep-alive connections, but not a client that trickles its request
line and headers a byte at a time (slowloris): such a connection is held forever, and enough
of them exhaust the workers' connections. :class:`HeadTimeoutProtocol` is uvicorn's httptools
protocol plus one timer: from the connection's start, and from the first byte received while
no request is in progress, the request line and headers must be complete within
``RECO_HEADER_TIMEOUT_SECONDS``
(10 s by default), or the connection is closed. Bodies are not affected (``RECO_MAX_BODY_BYTES``
bounds those). `reco serve` runs with it: ``uvicorn --http api.headtimeout:HeadTimeoutProtocol``.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from recommender.config import get_settings

log = logging.getLogger(__name__)
PROTOCOL = "api.headtimeout:HeadTimeoutProtocol"  # uvicorn's --http / http= form


@functools.cache
def head_timeout() -> float:
    """``RECO_HEADER_TIMEOUT_SECONDS`` of this process (read once, at the first connection:
    uvicorn builds the protocol itself, in each worker)."""
    return get_settings().api.header_timeout_seconds


class HeadTimeoutProtocol(HttpToolsProtocol):
    """The timer runs while the connection waits for a request head: from the connection's
    start, and from the first byte received while no request is in progress (bytes that
    begin no request, such as blank lines, included); a complete head stops it. While a
    request is being answered it does not run (pipelined heads wait for the server then)."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(head_timeout(), self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        log.info(
            "closing the connection of %s: no complete request head within %g s",
            f"{self.client[0]}:{self.client[1]}" if self.client else "a client",
            head_timeout(),
        )
        self.transport.close()
