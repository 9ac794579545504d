"""A live model that cannot be loaded (its files no longer match their checksums) never splits
what is served: the lists and the model always come from one version, and at start-up the
API serves the newest version that loads, with its own lists, and ``/ready`` says why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.batch.publication import RunLock, publish
from recommender.config import Settings
from recommender.contract.published import history
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.repo import redis_client
from recommender.pipeline.nightly import run_nightly
from recommender.pipeline.release import promote
from recommender.pipeline.train import train
from recommender.training.artifacts import models_dir, publish_version
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
USER = "a_user0"


@pytest.fixture(scope="module")
def two_versions(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[Settings, str, str]]:
    """Production v2 with its lists in one slot; v1's lists intact in the other."""
    settings = make_settings(
        tmp_path_factory.mktemp("integrity"), redis_url, catalog_poll_seconds=0.1
    )
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    v1 = run_nightly(settings, retrain=True).model_version
    v2 = train(settings, publish=False).version
    promote(settings, v2)
    yield settings, v1, v2
    teardown_repo(settings)


def _corrupt(settings: Settings, version: str) -> None:
    path = models_dir(settings.artifacts_dir) / version / "items.faiss"
    data = bytearray(path.read_bytes())
    data[64:68] = bytes(b ^ 0xFF for b in data[64:68])
    path.write_bytes(bytes(data))


def _switch_lists_to(settings: Settings, version: str) -> str:
    """Re-point the live lists to ``version``'s intact slot, as a rollback's pointer switch
    does (the files went bad after the switch was checked, or another tool switched)."""
    client = redis_client(settings)
    try:
        entry = next(
            e for e in history(client, settings.feast_project) if e.model_version == version
        )
        lock = RunLock(client, settings.feast_project, "test-switch", 30)
        lock.acquire()
        try:
            lists = replace(entry, published_at=datetime.now(timezone.utc).isoformat())
            publish(client, settings.feast_project, lock.token, lists)
        finally:
            lock.release()
    finally:
        client.close()
    publish_version(settings.artifacts_dir, version)
    return entry.run_id


def _recommend(client: TestClient) -> dict:
    r = client.get("/recommendations", params={"user_id": USER, "k": 5})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_corrupt_live_model_never_splits_lists_and_model(
    two_versions: tuple[Settings, str, str],
) -> None:
    settings, v1, v2 = two_versions
    with TestClient(create_app(settings)) as client:
        body = _recommend(client)
        assert (body["model_version"], body["source"]) == (v2, "precomputed")
        v2_run = body["run_id"]

        _corrupt(settings, v1)
        v1_run = _switch_lists_to(settings, v1)
        time.sleep(1.0)  # several polls: the API tried v1 and could not load it
        for _ in range(5):
            body = _recommend(client)
            # v2's model with v2's lists, not v1's lists labelled v1 beside v2's model
            assert (body["model_version"], body["run_id"]) == (v2, v2_run)
            assert body["run_id"] != v1_run
        ready = client.get("/ready").json()
        assert ready["ready"] and ready["model_version"] == v2 and ready["lists_run_id"] == v2_run
        assert v1 in ready["detail"] and "cannot be loaded" in ready["detail"]

    # Restarted with the corrupt v1 live: the newest version that loads (v2) serves, with its
    # own lists, instead of 503 for every request.
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["model_version"] == v2 and v1 in ready.json()["detail"]
        body = _recommend(client)
        assert (body["model_version"], body["run_id"], body["source"]) == (
            v2,
            v2_run,
            "precomputed",
        )
        similar = client.get(f"/items/{body['items'][0]['item_id']}/similar", params={"k": 3})
        assert similar.status_code == 200 and similar.json()["model_version"] == v2
