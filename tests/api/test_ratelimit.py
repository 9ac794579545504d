"""The shared (Redis) rate limiter: one bucket for every worker, its own keys only, and each
worker's share of the rate while Redis does not answer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from api.ratelimit import SharedRateLimiter, make_limiter, ratelimit_key
from api.security import RateLimiter
from recommender.config import Settings
from tests.support.repo import free_port

pytestmark = pytest.mark.integration


def _settings(redis_url: str, **extra: object) -> Settings:
    return Settings(redis_url=redis_url, feast_project=f"rl{uuid.uuid4().hex[:8]}", **extra)  # type: ignore[arg-type]


def test_two_workers_share_one_bucket(redis_url: str) -> None:
    settings = _settings(redis_url)
    key = ratelimit_key(settings.feast_project, "requests", "web")
    assert key.startswith(f"reco:{{{settings.feast_project}}}:ratelimit:requests:")

    async def run() -> list[float]:
        a = SharedRateLimiter(settings, "requests", rate=1.0, burst=3, workers=2)
        b = SharedRateLimiter(settings, "requests", rate=1.0, burst=3, workers=2)
        try:
            waits = [await a.acquire("web"), await b.acquire("web"), await a.acquire("web")]
            waits += [await b.peek("web"), await b.acquire("web"), await a.acquire("other")]
            return waits
        finally:
            await a.close()
            await b.close()

    try:
        waits = asyncio.run(run())
        assert waits[:3] == [0.0, 0.0, 0.0]  # the burst, taken by two "workers" together
        assert 0.9 < waits[3] <= 1.0 and 0.9 < waits[4] <= 1.0  # then wait for a token
        assert waits[5] == 0.0  # another key has its own bucket
        ttl = redis.Redis.from_url(redis_url).pttl(key)
        assert 0 < ttl <= 4000  # a bucket expires once it would be full again (bounded memory)
    finally:
        client = redis.Redis.from_url(redis_url)
        for who in ("web", "other"):
            client.delete(ratelimit_key(settings.feast_project, "requests", who))


def test_without_redis_each_worker_keeps_its_share(redis_url: str) -> None:
    settings = _settings(f"redis://127.0.0.1:{free_port()}/0", redis_timeout_ms=50)

    async def run() -> list[float]:
        limiter = SharedRateLimiter(settings, "requests", rate=4.0, burst=4, workers=2)
        try:
            return [await limiter.acquire("web") for _ in range(3)]
        finally:
            await limiter.close()

    waits = asyncio.run(run())
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # half of the burst of 4: two workers


def test_one_worker_keeps_limits_in_memory(redis_url: str) -> None:
    assert isinstance(make_limiter(_settings(redis_url), "requests", 5.0), RateLimiter)
    assert isinstance(
        make_limiter(_settings(redis_url, workers=2), "requests", 5.0), SharedRateLimiter
    )
