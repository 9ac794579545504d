"""The run lock, the blue/green pointer and the project's other keys on a real 3-node Redis
Cluster (``RECO_REDIS_CLUSTER``), as on one Redis: hash-tagged keys in one slot, the lock
renewed by its keeper process through a cluster client, a lock someone else took refused at
the switch, a rollback switch back to the previous run's slot, and the move of a deployment's
keys from their names before the hash tag."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.crc import key_slot

from recommender.batch.publication import RunLock, holder_key, lock_key, mark_slot, publish
from recommender.config import Settings
from recommender.contract.published import (
    LiveLists,
    history,
    history_key,
    live_key,
    monitor_key,
    next_slot,
    read_live,
    slot_key,
    slot_owner,
)
from recommender.errors import LockLost, RunLocked
from recommender.featurestore.keys import legacy_name, project_key, project_pattern
from recommender.featurestore.redisclient import (
    RedisClient,
    make_async_redis,
    make_redis,
    migrate_legacy_keys,
)
from recommender.featurestore.repo import (
    CATALOG_VERSION_KEY,
    catalog_version_key,
    config_dict,
    materialized_key,
)
from recommender.lifecycle.experiments import serving_key
from tests.support.redis_cluster import redis_cluster
from tests.support.repo import make_settings

pytestmark = pytest.mark.integration


def _all_keys(project: str) -> list[str]:
    return [
        live_key(project),
        history_key(project),
        lock_key(project),
        holder_key(project),
        monitor_key(project),
        slot_key(project, "a"),
        slot_key(project, "b"),
        serving_key(project),
        catalog_version_key(project),
        materialized_key(project),
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


@pytest.fixture
def cluster_settings(cluster: list[str]) -> Settings:
    """Settings seeded by the first node, for a project whose keys live on another node (a
    single-node client at the seed would get MOVED replies: only a cluster client passes)."""
    settings = Settings(redis_url=f"redis://{cluster[0]}/0", redis_cluster=True)
    client = make_redis(settings.redis, timeout=5)
    try:
        while True:
            project = f"tclu_{uuid.uuid4().hex[:10]}"
            if client.get_node_from_key(live_key(project)).name != cluster[0]:  # type: ignore[union-attr]
                return settings.replace(feast_project=project)
    finally:
        client.close()


@pytest.fixture
def client(cluster_settings: Settings) -> Iterator[RedisClient]:
    client = make_redis(cluster_settings.redis, timeout=5)
    yield client
    for key in _all_keys(cluster_settings.feast_project):  # exactly this test's keys
        client.delete(key)
    client.close()


def test_a_projects_keys_share_one_slot_and_projects_spread_over_the_nodes(
    client: RedisClient,
) -> None:
    keys = _all_keys("demo")
    assert (
        keys[0] == "reco:{demo}:lists:live" and holder_key("demo") == lock_key("demo") + ":holder"
    )
    assert len(set(keys)) == len(keys)
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"demo")}
    # the API's format() template names the same key as the function
    assert CATALOG_VERSION_KEY.format(project="demo") == catalog_version_key("demo")
    assert project_pattern("demo") == "reco:{demo}:*"
    assert legacy_name("demo", live_key("demo")) == "reco:demo:lists:live"
    with pytest.raises(ValueError, match="braces"):
        project_key("a}b", "x")
    # the cluster really is three nodes, and projects land on different ones
    assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    owners = {client.get_node_from_key(live_key(f"p{i}")).name for i in range(12)}
    assert len(owners) >= 2


def test_the_factory_makes_a_cluster_client_only_when_the_setting_says_so(
    cluster_settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    single = Settings(redis_url=redis_url)
    assert type(make_redis(single.redis)) is redis.Redis
    assert type(make_async_redis(single.redis)) is aredis.Redis

    async def roundtrip() -> list[bytes | None]:
        client = make_async_redis(cluster_settings.redis, timeout=5)
        assert isinstance(client, AsyncRedisCluster)
        project = cluster_settings.feast_project
        try:
            await client.set(live_key(project), b"x")
            # one MGET of several keys: allowed on a cluster because they share a slot
            return await client.mget([live_key(project), serving_key(project)])  # type: ignore[no-any-return]
        finally:
            await client.delete(live_key(project))
            await client.aclose()

    assert asyncio.run(roundtrip()) == [b"x", None]
    # Feast's online store follows the setting: its redis_cluster store, seeded by the URL
    repo_settings = make_settings(tmp_path, cluster_settings.redis.url, redis_cluster=True)
    online = config_dict(repo_settings)["online_store"]
    seed = cluster_settings.redis.url.removeprefix("redis://").removesuffix("/0")
    assert (online["redis_type"], online["connection_string"]) == ("redis_cluster", seed)
    single = config_dict(make_settings(tmp_path / "single", redis_url))["online_store"]
    assert single.get("redis_type", "redis") == "redis" and single["connection_string"].endswith(
        ",db=0"
    )
    with pytest.raises(ValueError, match="only database 0"):
        Settings(redis_url="redis://127.0.0.1:7000/3", redis_cluster=True)


def test_the_lock_is_renewed_through_the_cluster_and_fences_the_switch(
    cluster_settings: Settings, client: RedisClient
) -> None:
    project = cluster_settings.feast_project
    lock = RunLock(client, project, "night1", seconds=2)
    lock.acquire()
    try:
        keeper = psutil.Process(lock.heartbeat_pid)  # type: ignore[arg-type]
        assert keeper.is_running()
        time.sleep(3.5)  # 1.75 x the expiry: only the keeper's renewals keep it
        assert 0 < int(client.pttl(lock_key(project))) <= 2000  # type: ignore[arg-type]
        assert client.get(lock_key(project)) == lock.token
        assert 0 < int(client.pttl(holder_key(project))) <= 2000  # type: ignore[arg-type]
        lock.check()
        # a second run is refused, and told who holds the lock
        with pytest.raises(RunLocked, match="run night1 .* holds the nightly lock"):
            RunLock(make_redis(cluster_settings.redis), project, "night2", 2).acquire()
        # the blue/green switch: a Lua script over the lock, pointer and history keys
        first = LiveLists(next_slot(None), "night1", "v1", "t1", 10)
        mark_slot(client, project, first.slot, first.run_id)
        publish(client, project, lock.token, first)
        assert read_live(client, project) == first
    finally:
        lock.release()
    assert client.exists(lock_key(project), holder_key(project)) == 0

    second_lock = RunLock(client, project, "night2", seconds=2)
    second_lock.acquire()
    try:
        second = LiveLists(next_slot(first), "night2", "v2", "t2", 10)
        assert second.slot != first.slot
        mark_slot(client, project, second.slot, second.run_id)
        publish(client, project, second_lock.token, second)
        assert read_live(client, project) == second
        # rollback by pointer switch (recommender/pipeline/release.py): the previous run's
        # slot is intact
        previous = next(e for e in history(client, project) if e.model_version == "v1")
        assert slot_owner(client, project, previous.slot) == previous.run_id
        publish(client, project, second_lock.token, replace(previous, published_at="t3"))
    finally:
        second_lock.release()
    assert read_live(client, project) == replace(first, published_at="t3")
    assert [e.run_id for e in history(client, project)] == ["night1", "night2", "night1"]


def test_a_lock_someone_else_took_is_never_renewed_and_refuses_the_switch(
    cluster_settings: Settings, client: RedisClient
) -> None:
    project = cluster_settings.feast_project
    lock = RunLock(client, project, "stalled", seconds=2)
    lock.acquire()
    try:
        lock.check()
        # the lock expired while the holder stalled, and another run took it
        client.set(lock_key(project), b"another-run-token", px=20_000)
        with pytest.raises(LockLost):
            lock.check()
        with pytest.raises(LockLost):
            publish(client, project, lock.token, LiveLists("a", "stalled", "v1", "t", 1))
        time.sleep(1.5)  # two renewal periods: the keeper never extends the other's lock
        assert client.get(lock_key(project)) == b"another-run-token"
        assert 17_000 < int(client.pttl(lock_key(project))) <= 20_000  # type: ignore[arg-type]
    finally:
        lock.release()  # not ours any more: left alone
    assert client.get(lock_key(project)) == b"another-run-token"
    assert read_live(client, project) is None


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_legacy_keys_move_to_their_hash_tagged_names(
    where: str, redis_url: str, cluster_settings: Settings
) -> None:
    settings = cluster_settings if where == "cluster" else Settings(redis_url=redis_url)
    project = cluster_settings.feast_project  # unique to this test on either Redis
    client = make_redis(settings.redis, timeout=5)
    old = {k: legacy_name(project, k) for k in _all_keys(project)}
    try:
        client.set(old[live_key(project)], b'{"slot": "a"}')
        client.set(old[serving_key(project)], b"{}", px=600_000)
        client.hset(old[materialized_key(project)], mapping={"user_profile": "2026-12-01"})
        client.rpush(old[history_key(project)], b"h1", b"h2")
        client.set(catalog_version_key(project), b"7")  # already under the new name: kept
        client.set(old[catalog_version_key(project)], b"3")
        client.set(old[lock_key(project)], b"old-run", px=60_000)
        with pytest.raises(RunLocked, match="previous version holds"):
            migrate_legacy_keys(client, project)
        client.delete(old[lock_key(project)])

        moved = migrate_legacy_keys(client, project)

        assert moved == {
            old[k]: k
            for k in (
                live_key(project),
                serving_key(project),
                materialized_key(project),
                history_key(project),
            )
        }
        assert client.get(live_key(project)) == b'{"slot": "a"}'
        assert 590_000 < int(client.pttl(serving_key(project))) <= 600_000  # type: ignore[arg-type]
        assert client.hgetall(materialized_key(project)) == {b"user_profile": b"2026-12-01"}
        assert client.lrange(history_key(project), 0, -1) == [b"h1", b"h2"]
        assert client.get(catalog_version_key(project)) == b"7"
        assert client.exists(*old.values()) == 0
        assert migrate_legacy_keys(client, project) == {}  # idempotent
    finally:
        client.delete(*_all_keys(project))
        client.delete(*old.values())
        client.close()
