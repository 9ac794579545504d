"""The API on a real 3-node Redis Cluster (``RECO_REDIS_CLUSTER``): the precomputed list the
nightly job published there is served, the polled keys are read in one MGET (one hash tag),
and an event pushed through the cluster reaches the next response. Nothing touches the
shared Redis."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from api.main import create_app
from api.redisconn import one_slot
from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.pipeline.nightly import run_nightly
from tests.support.redis_cluster import redis_cluster
from tests.support.repo import feast_apply, make_settings
from tests.support.synthetic import synthetic_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with redis_cluster(tmp_path_factory.mktemp("nodes")) as nodes:
        settings = make_settings(
            tmp_path_factory.mktemp("api_cluster"), f"redis://{nodes[0]}/0", redis_cluster=True
        )
        write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
        feast_apply(settings)
        run_nightly(settings, retrain=True)
        yield settings


def test_the_api_serves_precomputed_lists_from_a_redis_cluster(cluster_repo: Settings) -> None:
    with TestClient(create_app(cluster_repo)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime.online.client, AsyncRedisCluster)
        assert one_slot(runtime.online.poll_keys) and runtime.online.poll_one_slot
        assert client.get("/ready").json()["lists_run_id"]  # the pointer, read by one MGET

        r = client.get("/recommendations", params={"user_id": "a_user0", "k": 5})
        body = r.json()
        assert r.status_code == 200, body
        assert (body["source"], body["strategy"]) == ("precomputed", "nightly_list")
        assert body["run_id"] == runtime.live.run_id
        assert len(body["items"]) == 5 and all(i["item_id"].startswith("a") for i in body["items"])

        # an event goes through Feast's cluster store; the next response reflects it
        ack = client.post(
            "/events", json={"user_id": "a_user0", "item_id": "a1", "event_type": "click"}
        ).json()
        assert ack["online"] is True, ack
        after = client.get("/recommendations", params={"user_id": "a_user0", "k": 5}).json()
        assert after["source"] == "realtime" and after["reason"] == (
            "events newer than the stored list"
        )
        assert "a1" not in [i["item_id"] for i in after["items"]]
