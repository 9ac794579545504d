"""The nightly job, promotion and rollback with everything on a real 3-node Redis Cluster
(``RECO_REDIS_CLUSTER``): Feast's online store (its ``redis_cluster`` store, selected by the
setting; lists through Feast's write path, features through the streaming engine's cluster
fallback), the run lock and its keeper, the pointer, history and slot owners. Nothing touches
the shared Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from redis.cluster import RedisCluster
from typer.testing import CliRunner

from jobs.cli import app
from recommender.batch.publication import lock_key
from recommender.config import Settings
from recommender.contract.published import (
    history,
    live_key,
    live_lists,
    read_precomputed,
    slot_owner,
)
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.keys import legacy_name
from recommender.featurestore.names import SLOTS
from recommender.featurestore.redisclient import make_redis
from recommender.featurestore.repo import materialized_key, open_store
from recommender.pipeline.nightly import run_nightly
from recommender.pipeline.release import rollback
from recommender.training import registry
from tests.support.redis_cluster import redis_cluster
from tests.support.repo import feast_apply, make_settings
from tests.support.synthetic import synthetic_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with redis_cluster(tmp_path_factory.mktemp("nodes")) as nodes:
        settings = make_settings(
            tmp_path_factory.mktemp("cluster_repo"), f"redis://{nodes[0]}/0", redis_cluster=True
        )
        write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
        feast_apply(settings)
        yield settings


def test_nights_publish_and_roll_back_on_a_redis_cluster(repo: Settings) -> None:
    project, root = repo.feast_project, repo.artifacts_dir
    client = make_redis(repo.redis, timeout=10)
    store_type = open_store(repo).config.online_store.redis_type
    assert isinstance(client, RedisCluster) and store_type.value == "redis_cluster"

    first = run_nightly(repo, retrain=True)
    assert first.status == "succeeded" and set(first.materialized.values()) == {"full"}
    live = live_lists(repo)
    assert live is not None and (live.run_id, live.slot) == (first.run_id, first.slot)
    # the lists went through Feast to the cluster, where feature consumers read them
    row = read_precomputed(open_store(repo), "a_user0", live)
    assert (
        row is not None
        and row["run_id"] == first.run_id
        and len(row["item_ids"]) == repo.nightly.top_n
    )
    # the materialization record is on the cluster too: the next night continues incrementally
    assert set(client.hkeys(materialized_key(project))) == {  # type: ignore[arg-type]
        v.encode() for v in first.materialized
    }

    # a worse candidate is refused; the night still publishes v1's lists, in the other slot
    worse = repo.replace(als_regularization=500.0, als_iterations=1)
    refused = run_nightly(worse, retrain=True)
    assert refused.model_version == first.model_version and refused.slot != first.slot
    assert set(refused.materialized.values()) == {"incremental"}
    better = run_nightly(repo, retrain=True)
    assert registry.production(root) == better.model_version != first.model_version
    assert {slot_owner(client, project, s) for s in SLOTS} == {refused.run_id, better.run_id}

    # rollback: one Lua switch under the run lock back to the refused night's slot
    back = rollback(repo, reason="cluster")
    assert (back["how"], back["run_id"], back["version"]) == (
        "pointer switch",
        refused.run_id,
        first.model_version,
    )
    live = live_lists(repo)
    assert live is not None and (live.run_id, live.model_version) == (
        refused.run_id,
        first.model_version,
    )
    row = read_precomputed(open_store(repo), "a_user0", live)
    assert row is not None and row["run_id"] == refused.run_id
    assert [e.run_id for e in history(client, project)][:4] == [
        refused.run_id,
        better.run_id,
        refused.run_id,
        first.run_id,
    ]
    assert client.exists(lock_key(project)) == 0  # released after every run
    client.close()


def test_reco_lists_migrate_keys_moves_a_projects_old_key_names(
    repo: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = repo.feast_project + "_old"
    client = make_redis(repo.redis, timeout=10)
    old = legacy_name(project, live_key(project))
    client.set(old, b'{"slot": "b"}')
    for key, value in {
        "RECO_REDIS_URL": repo.redis.url,
        "RECO_REDIS_CLUSTER": "true",
        "RECO_FEAST_PROJECT": project,
    }.items():
        monkeypatch.setenv(key, value)
    out = CliRunner().invoke(app, ["lists", "migrate-keys"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"project": project, "moved": {old: live_key(project)}}
    assert client.get(live_key(project)) == b'{"slot": "b"}' and client.exists(old) == 0
    client.close()
