"""One pure-ASGI gateway in front of every route: body-size limit, API-key authentication,
per-key rate limiting, and the request metrics (pure ASGI: no per-request task or copy)."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.security import ApiKeys, RateLimiter
from api.telemetry import Metrics

OPEN_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/metrics",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/docs/oauth2-redirect",
        "/dashboard",  # the page only; its data calls send the operator's X-API-Key
    }
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
Message = MutableMapping[str, Any]


async def _reply(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    def __init__(
        self, app: ASGIApp, keys: ApiKeys, limiter: RateLimiter, metrics: Metrics, max_body: int
    ) -> None:
        self.app, self.keys, self.limiter = app, keys, limiter
        self.metrics, self.max_body = metrics, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(label).observe(time.perf_counter() - start)
            self.metrics.requests.labels(label, scope["method"], str(status[0])).inc()
            if status[0] >= 500:
                self.metrics.errors.labels("http_5xx").inc()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path not in OPEN_PATHS and (self.keys.enabled or self.limiter.enabled):
            headers = dict(scope["headers"])
            who = None
            if self.keys.enabled:
                who = self.keys.name(headers.get(b"x-api-key", b"").decode("latin-1"))
                if who is None:
                    await _reply(
                        send,
                        401,
                        "missing or invalid API key (send it in the X-API-Key header)",
                        {"WWW-Authenticate": "ApiKey"},
                    )
                    return
            if self.limiter.enabled:
                who = who or (scope.get("client") or ("unknown",))[0]
                wait = self.limiter.take(who)
                if wait > 0:
                    self.metrics.rate_limited.labels(who if self.keys.enabled else "ip").inc()
                    await _reply(
                        send,
                        429,
                        f"rate limit of {self.limiter.rate:g} requests/s exceeded",
                        {"Retry-After": str(max(1, math.ceil(wait)))},
                    )
                    return
        if scope["method"] in BODY_METHODS:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await _reply(send, 413, f"request body larger than {self.max_body} bytes")
                return
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        """Enforce the limit on chunked bodies too (no Content-Length)."""
        seen = [0]

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise HTTPException(413, f"request body larger than {self.max_body} bytes")
            return message

        return wrapped
