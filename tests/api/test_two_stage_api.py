"""End to end: a bundle whose ranker was trained on rows from Feast's offline store, promoted
by the nightly job, serving POST /recommendations through the two-stage path (real Feast,
Redis, LightGBM): provenance per item, explain, rules after ranking."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from jobs.nightly import run_nightly
from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.repo import open_store
from recommender.ranking.dataset import FeastReader
from recommender.ranking.features import Genres
from recommender.ranking.model import fit_two_stage
from recommender.ranking.twostage import RankingConfig
from recommender.training.artifacts import load_bundle, new_version, save_bundle
from tests.support.bundles import ALS
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
START = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[TestClient]:
    settings: Settings = make_settings(tmp_path_factory.mktemp("two_stage"), redis_url)
    tables = build_tables(*synthetic_tables(np.random.default_rng(7), per_user=14))
    write_tables(tables, settings.data_dir)
    feast_apply(settings)
    run_nightly(settings, retrain=True)
    bundle = load_bundle(settings.artifacts_dir)
    genres = tables["items"].set_index("item_id")["genres"].reindex(bundle.items.ids).tolist()
    bundle.ranking = fit_two_stage(
        tables["interactions"],
        bundle.users,
        bundle.items,
        bundle.als,
        FeastReader(open_store(settings)),
        Genres.from_lists(genres),
        [START + pd.Timedelta(days=d) for d in (30, 40)],
        20,
        RankingConfig(depth=20, als=ALS, rounds=40, lgb_params={"min_data_in_leaf": 5}),
    )
    bundle.version = new_version()
    save_bundle(bundle, settings.artifacts_dir, publish=True)
    run_nightly(settings, model_version=bundle.version)  # the lists and live pointer follow it
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        teardown_repo(settings)


def test_a_new_user_is_served_by_retrieval_and_ranking_with_provenance(client: TestClient) -> None:
    body = {"user_id": "newcomer", "recent_item_ids": ["a1", "a2", "a3"], "k": 5, "explain": True}
    r = client.post("/recommendations", json=body)
    got = r.json()
    assert r.status_code == 200, got
    assert (got["source"], got["strategy"]) == ("realtime", "two_stage")
    items = got["items"]
    assert len(items) == 5 and all(i["item_id"].startswith("a") for i in items)
    assert not {"a1", "a2", "a3"} & {i["item_id"] for i in items}
    known = {"als", "ease", "recent", "trending", "popular"}
    assert all(i["retrievers"] and set(i["retrievers"]) <= known for i in items)
    assert all(isinstance(i["moved_up_by"], list) for i in items)
    assert any(i["moved_up_by"] for i in items)
    assert all(i["reason"].startswith("because you liked") for i in items)


def test_rules_apply_after_ranking_and_provenance_needs_no_explain(client: TestClient) -> None:
    body = {"recent_item_ids": ["b1", "b2"], "k": 5, "exclude": ["genres:Comedy"]}
    got = client.post("/recommendations", json=body).json()
    assert got["strategy"] == "two_stage"
    assert not {f"b{j}" for j in range(0, 20, 4)} & {i["item_id"] for i in got["items"]}
    assert all(i["retrievers"] and "moved_up_by" not in i for i in got["items"])


def test_a_known_user_keeps_the_nightly_list_with_its_provenance(client: TestClient) -> None:
    """The nightly lists are the ranker's (the promoted bundle has one); each stored item keeps
    the retrievers that proposed it, so the warm path names them too."""
    got = client.get("/recommendations", params={"user_id": "a_user0", "k": 5}).json()
    assert (got["source"], got["strategy"]) == ("precomputed", "nightly_list")
    known = {"als", "ease", "recent", "trending", "popular"}
    assert all(i["retrievers"] and set(i["retrievers"]) <= known for i in got["items"])
