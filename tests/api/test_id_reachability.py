"""Every id that can be ingested can be asked about (issue 28.3-28.5): a catalog whose ids hold
``/``, look like a route's suffix or a dot segment, are 128 characters long or came padded with
blanks, ingested from files by ``reco data ingest``'s own function, trained and published
by the nightly run, then served (real Feast + Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.config import Settings
from recommender.pipeline.ingest import ingest_files
from recommender.pipeline.nightly import run_nightly
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
LONG_ITEM, LONG_USER = "a" * 128, "a_" + "u" * 126
ITEMS = {"a3": "a/3", "a4": "a4/similar", "a5": "..", "a6": LONG_ITEM, "b2": "b/2"}
USERS = {"a_user1": "a/user1", "a_user2": LONG_USER, "a_user3": " a_user3\t"}


@pytest.fixture(scope="module")
def odd_ids(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    tmp = tmp_path_factory.mktemp("odd_ids")
    settings = make_settings(tmp, redis_url, events_dir=tmp / "events")
    inter, users, items = synthetic_tables(np.random.default_rng(7))
    inter = inter.replace({"item_id": ITEMS, "user_id": USERS})
    users = users.replace({"user_id": USERS})
    items = items.replace({"item_id": ITEMS})
    files = {name: tmp / f"{name}.csv" for name in ("interactions", "users", "items")}
    for name, frame in zip(files, (inter, users, items), strict=True):
        frame.to_csv(files[name], index=False)
    ingest_files(settings, files["interactions"], files["users"], files["items"])
    feast_apply(settings)
    run_nightly(settings, retrain=True)
    yield settings
    teardown_repo(settings)


@pytest.fixture(scope="module")
def client(odd_ids: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(odd_ids)) as c:
        yield c


def _group_a() -> set[str]:
    return {ITEMS.get(f"a{j}", f"a{j}") for j in range(20)}


@pytest.mark.parametrize("item_id", ["a/3", "a4/similar", "..", LONG_ITEM, "a1"])
def test_every_ingested_item_id_has_similar_items(client: TestClient, item_id: str) -> None:
    asked = []
    if item_id != "..":  # a client resolves a ".." path segment before sending it
        asked.append(client.get(f"/items/{quote(item_id, safe='')}/similar?k=4"))  # a%2F3
        asked.append(client.get(f"/items/{quote(item_id)}/similar?k=4"))  # a/3, unencoded
    asked.append(client.get("/items/similar", params={"item_id": item_id, "k": 4}))
    for r in asked:
        assert r.status_code == 200, (r.url, r.text)
        body = r.json()
        assert body["item_id"] == item_id and len(body["items"]) == 4
        similar = {i["item_id"] for i in body["items"]}
        assert item_id not in similar and similar <= _group_a(), similar
    assert all(r.json()["items"] == asked[0].json()["items"] for r in asked)  # one answer


def test_an_unknown_id_with_a_slash_is_a_404_either_way(client: TestClient) -> None:
    assert client.get("/items/a%2Fnope/similar").status_code == 404
    assert client.get("/items/similar", params={"item_id": "a/nope"}).status_code == 404
    assert client.get("/items/similar").status_code == 422  # the id is required


def test_odd_user_ids_get_their_nightly_lists(client: TestClient) -> None:
    for user_id in ("a/user1", LONG_USER, "a_user3", " a_user3 "):
        r = client.get("/recommendations", params={"user_id": user_id, "k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user_id"] == user_id.strip() and body["source"] == "precomputed", body
        assert {i["item_id"] for i in body["items"]} <= _group_a()


def test_events_about_odd_ids_are_accepted(client: TestClient, odd_ids: Settings) -> None:
    event = {"user_id": LONG_USER, "item_id": LONG_ITEM, "event_type": "click"}
    assert client.post("/events", json=event).status_code == 202
    event = {"user_id": "a/user1", "item_id": "a4/similar", "event_type": "view"}
    assert client.post("/events", json=event).status_code == 202
    assert list(Path(odd_ids.event_log_dir).glob("events-*.jsonl"))


def test_metrics_name_the_route_as_the_schema_does(client: TestClient) -> None:
    assert client.get("/items/a%2F3/similar").status_code == 200
    text = client.get("/metrics").text
    assert 'route="/items/{item_id}/similar"' in text and "{item_id:path}" not in text
