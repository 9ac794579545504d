"""The API's Redis reads that need care on a Redis Cluster (the clients themselves come from
:mod:`recommender.featurestore.redisclient`: one Redis, or a ``RedisCluster`` when
``RECO_REDIS_CLUSTER`` is on).

Multi-key reads go through :func:`mget`: one ``MGET`` when every key hashes to one cluster
slot (the platform's keys are hash-tagged by project, ``reco:{<project>}:...``), else one
``GET`` per key, pipelined per node (``mget_nonatomic``). Single-key commands (the per-user
``HMGET``, the rate limiter's script) work unchanged on either client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from recommender.featurestore.redisclient import AsyncRedisClient


def one_slot(keys: Sequence[str]) -> bool:
    """True when every key hashes to the same cluster slot (one MGET may read them).

    Example: ``one_slot(["reco:{demo}:a", "reco:{demo}:b"])`` is True.
    """
    return len({key_slot(k.encode()) for k in keys}) <= 1


async def mget(client: AsyncRedisClient, keys: Sequence[str], same_slot: bool) -> list[Any]:
    """``MGET`` of ``keys`` (``same_slot``: :func:`one_slot` of them, computed once)."""
    if isinstance(client, AsyncRedisCluster) and not same_slot:
        return await client.mget_nonatomic(list(keys))
    return await client.mget(list(keys))
