"""The API's Redis clients: one Redis, or a Redis Cluster when ``RECO_REDIS_CLUSTER`` is on
(``RECO_REDIS_URL`` then names one seed node; the client discovers the others).

Multi-key reads go through :func:`mget`, which sends one ``MGET`` when every key hashes to one
cluster slot (hash-tagged keys, ``reco:{<project>}:...``) and one ``GET`` per key, pipelined
per node, otherwise; single-key commands (the per-user ``HMGET``) work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis
from redis import Redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.crc import key_slot

from recommender.config import Settings

AsyncClient = aredis.Redis | AsyncRedisCluster
SyncClient = Redis | RedisCluster


def _password(settings: Settings) -> str | None:
    return settings.redis_password.get_secret_value() if settings.redis_password else None


def async_client(settings: Settings, timeout: float) -> AsyncClient:
    """An asyncio client with ``timeout`` seconds for connects and replies.

    Example: ``async_client(Settings(), 0.1)`` -> ``redis.asyncio.Redis`` at RECO_REDIS_URL.
    """
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "password": _password(settings),
    }
    if settings.redis_cluster:
        return AsyncRedisCluster.from_url(settings.redis_url, **kwargs)
    return aredis.Redis.from_url(settings.redis_url, **kwargs)


def sync_client(settings: Settings, timeout: float, connect_timeout: float = 1.0) -> SyncClient:
    """A blocking client (start-up reads, bulk reads in a thread)."""
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
        "password": _password(settings),
    }
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **kwargs)
    return Redis.from_url(settings.redis_url, **kwargs)


def one_slot(keys: Sequence[str]) -> bool:
    """True when every key hashes to the same cluster slot (one MGET may read them)."""
    return len({key_slot(k.encode()) for k in keys}) <= 1


async def mget(client: AsyncClient, keys: Sequence[str], same_slot: bool) -> list[Any]:
    """``MGET`` of ``keys`` (``same_slot``: :func:`one_slot` of them, computed once)."""
    if isinstance(client, AsyncRedisCluster) and not same_slot:
        return await client.mget_nonatomic(list(keys))
    return await client.mget(list(keys))
