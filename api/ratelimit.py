"""Rate limits that hold across worker processes: the token bucket kept in Redis, taken in one
round trip (a Lua script; Redis's clock, so workers on several hosts agree).

``reco serve --workers N`` runs N processes, each with its own memory: N in-memory limiters
would admit N times the configured rate. With more than one worker the API uses
:class:`SharedRateLimiter` instead. When Redis does not answer, each worker falls back to its
in-memory share (``rate / workers``), so the total still holds and nobody is locked out.
"""

from __future__ import annotations

import hashlib
import logging
import time

from redis.exceptions import RedisError

from api.security import DEFAULT_MAX_BUCKETS, RateLimiter
from recommender.config import Settings
from recommender.featurestore.keys import project_key
from recommender.featurestore.redisclient import AsyncRedisClient, make_async_redis

log = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst, take (1) or only look (0).
# Returns the seconds to wait as a string (0 when a token was taken), exact to 1 us.
_BUCKET = """
local rate, burst, take = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens, ts = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if tokens >= 1 then
  if take then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
  end
  return '0'
end
if take then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return string.format('%.6f', (1 - tokens) / rate)
"""


def ratelimit_key(project: str, kind: str, who: str) -> str:
    """The bucket of ``who`` (an API key's name or an address) for one limit ``kind``;
    hash-tagged by project like the other ``reco:`` keys, ``who`` hashed (bounded length)."""
    digest = hashlib.blake2b(who.encode(), digest_size=12).hexdigest()
    return project_key(project, "ratelimit", kind, digest)


class SharedRateLimiter:
    """A token bucket per key in Redis: ``rate`` tokens/s up to ``burst`` (0 = 2 s of rate).

    Example: ``await SharedRateLimiter(settings, "requests", 10, 20, workers=2).acquire("web")``
    -> ``0.0`` (allowed) or the seconds to wait.
    """

    def __init__(
        self,
        settings: Settings,
        kind: str,
        rate: float,
        burst: int = 0,
        workers: int = 1,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self.settings, self.kind, self.rate = settings, kind, rate
        self.burst = float(burst or max(1, int(2 * rate + 0.999999)))
        # the fallback while Redis does not answer: this worker's share of the rate
        share = rate / max(1, workers)
        local_burst = max(1, int(self.burst / max(1, workers)))
        self.local = RateLimiter(share, local_burst, max_buckets=max_buckets)
        self._client: AsyncRedisClient | None = None
        self._script_sha: str | None = None
        self._down_until = 0.0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @property
    def max_buckets(self) -> int:
        return self.local.max_buckets

    @max_buckets.setter
    def max_buckets(self, value: int) -> None:
        self.local.max_buckets = value

    async def acquire(self, key: str) -> float:
        """0 when the request may go ahead, else how long until a token is free."""
        return await self._call(key, take=True)

    async def peek(self, key: str) -> float:
        """Like :meth:`acquire` without taking a token."""
        return await self._call(key, take=False)

    async def _call(self, key: str, take: bool) -> float:
        if time.monotonic() < self._down_until:
            return self.local.take(key) if take else self.local.wait(key)
        if self._client is None:  # created in the serving loop, on first use
            timeout = self.settings.redis.timeout_ms / 1000
            self._client = make_async_redis(
                self.settings.redis, timeout=timeout, connect_timeout=timeout
            )
        bucket = ratelimit_key(self.settings.feast_project, self.kind, key)
        args = (self.rate, self.burst, 1 if take else 0)
        try:
            if self._script_sha is None:
                self._script_sha = await self._client.script_load(_BUCKET)  # type: ignore[union-attr]
            try:
                raw = await self._client.evalsha(self._script_sha, 1, bucket, *args)  # type: ignore[union-attr,arg-type,misc]
            except RedisError as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                raw = await self._client.eval(_BUCKET, 1, bucket, *args)  # type: ignore[union-attr,arg-type,misc]
        except (RedisError, OSError, TimeoutError) as exc:
            if self._down_until == 0.0 or time.monotonic() >= self._down_until:
                log.warning("rate limits kept in memory (this worker's share): %s", exc)
            self._down_until = time.monotonic() + self.settings.redis.retry_seconds
            return self.local.take(key) if take else self.local.wait(key)
        return float(raw)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_limiter(
    settings: Settings, kind: str, rate: float, burst: int = 0
) -> SharedRateLimiter | RateLimiter:
    """Shared (Redis) with more than one worker (``RECO_WORKERS`` > 1), else in memory."""
    if settings.api.workers > 1:
        return SharedRateLimiter(
            settings,
            kind,
            rate,
            burst,
            workers=settings.api.workers,
            max_buckets=settings.api.rate_limit_max_buckets,
        )
    return RateLimiter(rate, burst, max_buckets=settings.api.rate_limit_max_buckets)
