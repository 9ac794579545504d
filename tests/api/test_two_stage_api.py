"""End to end: a bundle whose ranker was trained on rows from Feast's offline store, promoted
by the nightly job, serving POST /recommendations through the two-stage path (real Feast,
Redis, LightGBM): provenance per item, explain, rules after ranking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.featurestore.repo import open_store
from recommender.lifecycle.experiment_ops import start, stop
from recommender.lifecycle.experiments import Variant
from recommender.pipeline.nightly import run_nightly
from recommender.ranking.dataset import FeastReader
from recommender.ranking.features import Genres
from recommender.ranking.model import fit_two_stage
from recommender.ranking.twostage import RankingConfig
from recommender.training.artifacts import load_bundle, new_version, save_bundle
from tests.support.bundles import ALS
from tests.support.metrics import count_and_sum
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
START = pd.Timestamp("2024-01-01", tz="UTC")


@dataclass
class Served:
    client: TestClient
    settings: Settings
    als_only: str  # the first version (no ranker)
    ranked: str  # the promoted version with the ranker


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Served]:
    settings: Settings = make_settings(tmp_path_factory.mktemp("two_stage"), redis_url)
    tables = build_tables(*synthetic_tables(np.random.default_rng(7), per_user=14))
    write_tables(tables, settings.data_dir)
    feast_apply(settings)
    run_nightly(settings, retrain=True)
    bundle = load_bundle(settings.artifacts_dir)
    als_only = bundle.version
    genres = tables["items"].set_index("item_id")["genres"].reindex(bundle.items.ids).tolist()
    bundle.ranking = fit_two_stage(
        tables["interactions"],
        bundle.items,
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
            yield Served(c, settings, als_only, bundle.version)
    finally:
        teardown_repo(settings)


@pytest.fixture
def client(served: Served) -> TestClient:
    return served.client


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


def test_concurrent_cold_requests_get_what_each_gets_alone(client: TestClient) -> None:
    """Requests in flight together go through the batcher (ranked as blocks when they wait in
    the same event-loop turn): each still gets its own ranking, rules and k."""
    bodies = [
        {"user_id": f"together{n}", "recent_item_ids": items, "k": k, "exclude": exclude}
        for n, (items, k, exclude) in enumerate(
            [
                (["a1", "a2", "a3"], 5, []),
                (["b1", "b2"], 4, ["genres:Comedy"]),
                (["a5", "b6"], 3, []),
                (["b3"], 6, []),
            ]
            * 2
        )
    ]

    def items_of(got: dict) -> list[str]:  # type: ignore[type-arg]
        assert got["strategy"] == "two_stage", got
        return [i["item_id"] for i in got["items"]]

    alone = [items_of(client.post("/recommendations", json=b).json()) for b in bodies]

    async def together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as ac:
            return await asyncio.gather(*(ac.post("/recommendations", json=b) for b in bodies))

    blocks = client.app.state.runtime.metrics.two_stage_block  # type: ignore[attr-defined]
    before = count_and_sum(blocks)
    responses = client.portal.call(together)  # type: ignore[union-attr]
    assert [items_of(r.json()) for r in responses] == alone
    count, total = (a - b for a, b in zip(count_and_sum(blocks), before, strict=True))
    assert total == len(bodies) and 1 <= count <= len(bodies)


def test_a_known_user_keeps_the_nightly_list_with_its_provenance(client: TestClient) -> None:
    """The nightly lists are the ranker's (the promoted bundle has one); each stored item keeps
    the retrievers that proposed it, so the warm path names them too."""
    got = client.get("/recommendations", params={"user_id": "a_user0", "k": 5}).json()
    assert (got["source"], got["strategy"]) == ("precomputed", "nightly_list")
    known = {"als", "ease", "recent", "trending", "popular"}
    assert all(i["retrievers"] and set(i["retrievers"]) <= known for i in got["items"])


def test_ranked_and_als_only_are_two_variants_of_one_experiment(served: Served) -> None:
    """`reco experiments start` with the ranked version and the ALS-only one: each user sees
    one variant, sticky; the ranked variant serves the ranker's nightly lists (retrievers
    named), the ALS-only one its own model in real time (no retrievers)."""
    exp = start(
        served.settings,
        "ranked_vs_als",
        [Variant("als_only", 50, served.als_only), Variant("ranked", 50, served.ranked)],
    )
    c = served.client
    try:
        deadline = time.monotonic() + 15
        while c.get("/admin/overview").json().get("experiment") is None:
            assert time.monotonic() < deadline, "the API never picked up the experiment"
            time.sleep(0.2)
        seen = set()
        for user in [f"{g}_user{u}" for g in "ab" for u in range(10)]:
            got = c.get("/recommendations", params={"user_id": user, "k": 5}).json()
            assert got["experiment"] == "ranked_vs_als"
            assert got["variant"] == exp.assign(user).name
            seen.add(got["variant"])
            if got["variant"] == "ranked":
                assert (got["model_version"], got["source"]) == (served.ranked, "precomputed")
                assert all(i["retrievers"] for i in got["items"])
            else:
                assert (got["model_version"], got["source"]) == (served.als_only, "realtime")
                assert all("retrievers" not in i for i in got["items"])
        assert seen == {"als_only", "ranked"}  # 20 users, 50/50: both variants served
    finally:
        stop(served.settings, "ranked_vs_als")
