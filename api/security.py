"""API keys, token-bucket rate limiters (in memory, per process, bounded; shared across worker
processes in api/ratelimit.py) and the client address behind trusted proxies."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from recommender.config import ApiKeyHolder

DEFAULT_MAX_BUCKETS = 10_000
MIN_KEY_LENGTH = 16  # shorter API keys are accepted, with a warning at start
# The limiter key of a request whose peer a server in front replaced by an address it read in
# X-Forwarded-For (uvicorn does for requests from 127.0.0.1 unless run with
# proxy_headers=False), when no proxy is trusted: the header must not choose the key.
REWRITTEN_PEER = "rewritten-peer"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ApiKeys:
    """Constant-time lookup of a presented key; its holder's name is what metrics show, its
    role what it may call (``admin``: the /admin routes too).

    Example: ``ApiKeys({"s3": ApiKeyHolder("ops", "admin")}).holder("s3").role`` is ``"admin"``.
    """

    def __init__(self, keys: Mapping[str, ApiKeyHolder]) -> None:
        self._by_digest = {hashlib.sha256(k.encode()).digest(): h for k, h in keys.items()}
        # failed attempts are throttled, but a request with a valid key is never held back
        # by them (else anyone could lock every client out): guessing is then as fast as the
        # network, and only a key's length keeps it from being found
        self.short = sorted({h.name for k, h in keys.items() if len(k) < MIN_KEY_LENGTH})

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def holder(self, presented: str | None) -> ApiKeyHolder | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        for known, holder in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return holder
        return None


class RateLimiter:
    """Token buckets: ``rate`` tokens per second up to ``burst``; one token per request. At
    most ``max_buckets`` are kept: the least recently used goes first (it starts full again).

    Example: ``RateLimiter(10, 20).take("web")`` -> ``0.0`` (allowed) or the seconds to wait.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 0,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(2 * rate)))
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else how long until a token is free."""
        now = self.clock()
        tokens = self._tokens(key, now)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate

    def wait(self, key: str) -> float:
        """Like :meth:`take` without taking (and without keeping a bucket for ``key``)."""
        if key not in self._buckets:
            return 0.0
        tokens = self._tokens(key, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    # The gateway's interface, shared with api.ratelimit.SharedRateLimiter (kept in Redis).
    async def acquire(self, key: str) -> float:
        return self.take(key)

    async def peek(self, key: str) -> float:
        return self.wait(key)


class TrustedProxies:
    """The peers (IPs or CIDRs) whose ``X-Forwarded-For`` is believed; empty trusts none.

    Example: ``TrustedProxies("10.0.0.0/8").client("10.0.0.2", ["6.6.6.6, 1.2.3.4"])`` is
    ``"1.2.3.4"``: the right-most address no trusted proxy added, not what the client claims.
    """

    def __init__(self, spec: str | Iterable[str] = "") -> None:
        parts = spec.split(",") if isinstance(spec, str) else spec
        self.networks: tuple[Network, ...] = ()
        for part in (p.strip() for p in parts):
            if not part:
                continue
            try:
                self.networks += (ipaddress.ip_network(part, strict=False),)
            except ValueError:
                msg = f"trusted proxy {part!r} is not an IP address or network"
                raise ValueError(msg) from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not self.networks or not isinstance(host, str):
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The address a request comes from: the socket ``peer``, unless it is a trusted proxy;
        then the right-most ``X-Forwarded-For`` hop that is not one (the left-most if all are:
        the client is a proxy itself). ``forwarded_for``: the header's values, in order."""
        values = list(forwarded_for)
        hops = [h for value in values for h in _hosts(value)]
        raw = {i.strip() for value in values for i in value.split(",")}
        peer = peer or "unknown"
        if peer not in self:
            if not self and hops and (peer in hops or peer in raw):
                # A server in front already replaced the peer with a hop of this header
                # (uvicorn's proxy headers): the real peer, one that server trusts, is unknown
                # here; the header must not pick the key (it would, by picking the "peer").
                return REWRITTEN_PEER
            return peer  # the header of an untrusted peer is never read
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer


def _hosts(value: str) -> list[str]:
    """The hosts of one ``X-Forwarded-For`` value, read exactly as uvicorn reads them (a port
    or IPv6 brackets removed), so that a peer it rewrote is always recognised."""
    return [_host(item.strip()) for item in value.split(",") if item.strip()]


def _host(item: str) -> str:
    if item.startswith("["):
        end = item.find("]")
        if end == -1:
            return item
        rest = item[end + 1 :]
        return item[1:end] if not rest or rest.startswith(":") else item
    if item.count(":") == 1:
        host, port = item.rsplit(":", 1)
        try:
            int(port)
        except ValueError:
            return item
        return host
    return item
