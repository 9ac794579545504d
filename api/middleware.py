"""One pure-ASGI gateway in front of every route: body-size limit, API-key authentication
(failed attempts throttled per address; a valid key is never held back by them), the key's
role (/admin needs an admin key), per-key (else per-address) rate limiting, the full ``Allow``
header of a 405, and the request metrics (pure ASGI: no per-request task or copy).

The address of a request is the socket peer's, unless that peer is one of
``RECO_TRUSTED_PROXIES``: then it is read from ``X-Forwarded-For`` (:class:`TrustedProxies`)."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson
from fastapi import routing as fastapi_routing
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api.fastpath import CompiledRoute, compile_routes
from api.ratelimit import SharedRateLimiter, make_limiter
from api.security import ApiKeys, RateLimiter, TrustedProxies
from api.telemetry import Metrics
from recommender.config import Settings

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
# Routes that need a key with the admin role when keys are configured (the dashboard's data,
# experiment reports); the dashboard page itself is open, its data calls send the key.
ADMIN_PREFIX = "/admin"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The hot routes answered by their compiled form (api/fastpath.py), not FastAPI's machinery.
LEAN_ROUTES = frozenset({("GET", "/recommendations")})
# Every route of an app, included routers flattened (FastAPI >= 0.16x keeps them nested).
_route_list: Callable[[Any], Iterable[Any]] = getattr(
    fastapi_routing, "iter_route_contexts", lambda routes: routes
)
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
    """``settings`` gives the trusted proxies, the limiters' size and the failed-key limit;
    without it they are read from the app's runtime (``app.state.runtime.settings``) when the
    lifespan has started it (the defaults until then)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        limiter: RateLimiter | SharedRateLimiter,
        metrics: Metrics,
        max_body: int,
        settings: Settings | None = None,
        lean: bool = True,
    ) -> None:
        self.app, self.keys, self.limiter = app, keys, limiter
        self.metrics, self.max_body = metrics, max_body
        self.lean = lean  # False: every route through FastAPI (tests compare the two)
        self._compiled: dict[str, CompiledRoute] | None = None
        self._from_runtime = settings is None
        self._configure(settings or Settings.model_construct())  # model_construct: defaults

    def _configure(self, settings: Settings) -> None:
        self.trusted = TrustedProxies(settings.api.trusted_proxies)
        self.limiter.max_buckets = settings.api.rate_limit_max_buckets
        per_minute = settings.api.auth_failures_per_minute
        self.auth_failures = make_limiter(settings, "auth_failures", per_minute / 60, per_minute)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take the runtime's settings once the app has started. On a bad one (an address
        that is not one) stop the app again (its shutdown runs) and report a failed start,
        rather than fail every request."""
        failure: list[str] = []

        async def receive_or_stop() -> Message:
            return {"type": "lifespan.shutdown"} if failure else await receive()

        async def send_configured(message: Message) -> None:
            runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
            if message["type"] == "lifespan.startup.complete" and runtime is not None:
                try:
                    self._configure(runtime.settings)
                except ValueError as exc:
                    failure.append(str(exc))
                    return
            if failure and message["type"].startswith("lifespan.shutdown."):
                message = {"type": "lifespan.startup.failed", "message": failure[0]}
            await send(message)

        await self.app(scope, receive_or_stop, send_configured)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self._from_runtime:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if status[0] == 405:
                    message = _allow_every_method(scope, message)
            await send(message)

        try:
            await self._handle(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            # the template without converters: /items/{item_id}/similar, as the OpenAPI schema
            label = getattr(route, "path_format", None) or "unmatched"
            m = self.metrics
            m.child(m.latency, label).observe(time.perf_counter() - start)
            m.child(m.requests, label, scope["method"], str(status[0])).inc()
            if status[0] >= 500:
                self.metrics.errors.labels("http_5xx").inc()

    def address(self, scope: Scope) -> str:
        """Where the request comes from (the rate limits' key when there are no API keys)."""
        peer = (scope.get("client") or (None,))[0]
        forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        return self.trusted.client(peer, forwarded)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path not in OPEN_PATHS and (self.keys.enabled or self.limiter.enabled):
            headers = dict(scope["headers"])
            address = self.address(scope)
            who = None
            if self.keys.enabled:
                # a valid key is looked at first: failed attempts from its address (anyone's,
                # behind a proxy) never hold it back
                holder = self.keys.holder(headers.get(b"x-api-key", b"").decode("latin-1"))
                if holder is None:
                    await self._refuse(send, address)
                    return
                if holder.role != "admin" and _is_admin_path(scope):
                    await _reply(
                        send,
                        403,
                        f"the API key {holder.name!r} has the {holder.role} role; the /admin "
                        "routes need a key with the admin role",
                    )
                    return
                who = holder.name
            if self.limiter.enabled:
                who = who or address
                wait = await self.limiter.acquire(who)
                if wait > 0:
                    self.metrics.rate_limited.labels(who if self.keys.enabled else "ip").inc()
                    await _reply(
                        send,
                        429,
                        f"rate limit of {self.limiter.rate:g} requests/s exceeded",
                        {"Retry-After": str(max(1, math.ceil(wait)))},
                    )
                    return
        if self.lean and scope["method"] == "GET" and not scope.get("root_path"):
            compiled = self._compiled_route(scope)
            if compiled is not None:
                await compiled(scope, receive, send)
                return
        if scope["method"] in BODY_METHODS:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await _reply(send, 413, f"request body larger than {self.max_body} bytes")
                return
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, address: str) -> None:
        """A request without a valid key: 401, counted against its address; 429 once the
        address has failed too often (the attempt is not counted then)."""
        wait = await self.auth_failures.peek(address) if self.auth_failures.enabled else 0.0
        if wait > 0:
            self.metrics.rate_limited.labels("auth_failures").inc()
            await _reply(
                send,
                429,
                "too many failed authentication attempts from this address",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
            return
        if self.auth_failures.enabled:
            await self.auth_failures.acquire(address)
        await _reply(
            send,
            401,
            "missing or invalid API key (send it in the X-API-Key header)",
            {"WWW-Authenticate": "ApiKey"},
        )

    def _compiled_route(self, scope: Scope) -> CompiledRoute | None:
        app = scope.get("app")
        if app is None or getattr(app, "dependency_overrides", None):
            return None  # overridden dependencies are FastAPI's business
        if self._compiled is None:
            self._compiled = compile_routes(app, set(LEAN_ROUTES))
        return self._compiled.get(scope["path"])

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


def _is_admin_path(scope: Scope) -> bool:
    """Whether the request is for an /admin route, read from the path the router matches (a
    root path removed), so that no spelling of the path reaches one without the check."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _allow_every_method(scope: Scope, start: Message) -> Message:
    """A 405 names the methods of the first route whose path matched (GET /recommendations for
    a POST-able path): list those of every route of the path instead."""
    methods: set[str] = set()
    for route in _route_list(getattr(scope.get("app"), "routes", [])):
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route_methods
    if not methods:
        return start
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"allow"]
    headers.append((b"allow", ", ".join(sorted(methods)).encode()))
    return {**start, "headers": headers}
