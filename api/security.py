"""API keys and a per-key token-bucket rate limiter (in memory, per process)."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping


class ApiKeys:
    """Constant-time lookup of a presented key; names are what logs and metrics show."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._by_digest = {hashlib.sha256(k.encode()).digest(): n for k, n in keys.items()}

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def name(self, presented: str | None) -> str | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        for known, name in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return name
        return None


class RateLimiter:
    """Token buckets: ``rate`` tokens per second up to ``burst``; one token per request.

    Example: ``RateLimiter(10, 20).take("web")`` -> ``0.0`` (allowed) or the seconds to wait.
    """

    def __init__(
        self, rate: float, burst: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, math.ceil(2 * rate)))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else how long until a token is free."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
