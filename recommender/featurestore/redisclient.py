"""Redis clients for the platform's own keys (list pointer, history, run lock, slot owners,
serving configuration, monitor summary, catalog version, materialization record). Does I/O.

One Redis at ``RECO_REDIS_URL``, or a Redis Cluster when ``RECO_REDIS_CLUSTER`` is on (the
URL then names one seed node; the client discovers the others). The keys are hash-tagged by
project (:mod:`recommender.featurestore.keys`), so every multi-key command and script of the
platform runs in one slot. :func:`migrate_legacy_keys` renames a deployment's keys from their
names before the hash tag.
"""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from recommender.config import RedisSettings
from recommender.errors import RunLocked
from recommender.featurestore.keys import legacy_pattern, project_key

log = logging.getLogger(__name__)

RedisClient: TypeAlias = redis.Redis | RedisCluster
AsyncRedisClient: TypeAlias = aredis.Redis | AsyncRedisCluster


def make_redis(
    redis_settings: RedisSettings, *, timeout: float = 30.0, connect_timeout: float = 5.0
) -> RedisClient:
    """A blocking client with ``timeout`` seconds per reply: ``redis.Redis`` at
    ``RECO_REDIS_URL``, or a ``RedisCluster`` seeded by it when ``RECO_REDIS_CLUSTER`` is on.

    Example: ``make_redis(Settings().redis).get(live_key("reco"))``
    """
    kwargs = _kwargs(redis_settings, timeout, connect_timeout)
    if redis_settings.cluster:
        return RedisCluster.from_url(redis_settings.url, **kwargs)
    return redis.Redis.from_url(redis_settings.url, **kwargs)


def make_async_redis(
    redis_settings: RedisSettings, *, timeout: float = 30.0, connect_timeout: float = 5.0
) -> AsyncRedisClient:
    """The asyncio twin of :func:`make_redis` (``redis.asyncio.Redis`` / ``RedisCluster``)."""
    kwargs = _kwargs(redis_settings, timeout, connect_timeout)
    if redis_settings.cluster:
        return AsyncRedisCluster.from_url(redis_settings.url, **kwargs)
    return aredis.Redis.from_url(redis_settings.url, **kwargs)


def _kwargs(
    redis_settings: RedisSettings, timeout: float, connect_timeout: float
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": connect_timeout}
    if redis_settings.password:
        kwargs["password"] = redis_settings.password.get_secret_value()
    return kwargs


def migrate_legacy_keys(client: RedisClient, project: str) -> dict[str, str]:
    """Move ``project``'s keys from their names before the hash tag (``reco:<project>:x``) to
    ``reco:{<project>}:x``, keeping value and expiry (``DUMP``/``RESTORE``, which works across
    cluster slots where ``RENAME`` does not). A key that already exists under its new name
    wins (a newer run wrote it) and the old one is dropped. Idempotent; returns
    ``{old: new}`` for what it moved.

    Refuses (``RunLocked``) while an old-version run holds the legacy run lock: stop or
    wait for that run first, or its publication would go to the old pointer no API reads.
    """
    prefix = legacy_pattern(project)[:-1]  # "reco:<project>:"
    lock = prefix + "nightly:lock"
    if client.exists(lock):
        raise RunLocked(
            f"a run of the previous version holds {lock}; wait for it to finish (or for the "
            "lock to expire) and migrate then"
        )
    moved: dict[str, str] = {}
    for raw in client.scan_iter(match=legacy_pattern(project), count=1000):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        if old == lock + ":holder":
            continue  # expires with the lock it described
        new = project_key(project, old[len(prefix) :])
        dumped = client.dump(old)
        if dumped is None:  # expired or deleted meanwhile
            continue
        if not client.exists(new):
            ttl = int(client.pttl(old))  # type: ignore[arg-type]
            client.restore(new, max(ttl, 0), dumped)  # type: ignore[arg-type]
            moved[old] = new
        client.delete(old)
    if moved:
        log.info("moved %d Redis key(s) of %s to hash-tagged names", len(moved), project)
    return moved


def eviction_warning(client: RedisClient) -> str | None:
    """Why this Redis may evict the platform's own keys, or None when it will not.

    Under ``maxmemory`` an ``allkeys-*`` policy evicts any key: the run lock (the night then
    aborts with "lost the nightly lock"), the live-lists pointer and slot owners (known users
    fall back to real time), the materialization record. ``noeviction`` (writes fail loudly
    instead) is the requirement; ``volatile-*`` evicts only keys with an expiry, of which the
    platform has one that matters (the run lock: a night may abort, safely). A Redis that
    refuses ``CONFIG GET`` (some managed services) cannot be checked: None, logged."""
    try:
        raw: Any = client.config_get("maxmemory*")
    except redis.RedisError as exc:
        log.info("cannot check Redis' eviction policy (%s); it must be noeviction", exc)
        return None
    configs = (
        [raw] if "maxmemory-policy" in raw else [v for v in raw.values() if isinstance(v, dict)]
    )
    for config in configs:  # a cluster client answers per node
        policy = str(config.get("maxmemory-policy", "noeviction"))
        if int(config.get("maxmemory", 0) or 0) == 0 or policy == "noeviction":
            continue
        if policy.startswith("allkeys"):
            return (
                f"Redis evicts any key under maxmemory (maxmemory-policy {policy}): the run lock, "
                "the live-lists pointer and the materialization record can disappear (nights "
                "abort, known users fall back to real time); set maxmemory-policy noeviction"
            )
        return (
            f"Redis evicts keys with an expiry under maxmemory (maxmemory-policy {policy}): "
            "the nightly run lock can be evicted and a night then aborts; noeviction is "
            "recommended"
        )
    return None


def warn_on_eviction(client: RedisClient, who: str) -> str | None:
    """Log :func:`eviction_warning` (at start-up of ``who``) and return it."""
    warning = eviction_warning(client)
    if warning is not None:
        log.warning("%s: %s", who, warning)
    return warning
