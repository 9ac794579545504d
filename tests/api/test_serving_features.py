"""Events, filters, similar items, explanations, lineage and TTL, against real Feast + Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import RecommendResponse, SimilarResponse
from recommender.config import Settings
from recommender.events.log import read_events
from recommender.pipeline.catalog import set_availability

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(trained_repo: Settings) -> Iterator[TestClient]:
    settings = trained_repo.replace(catalog_poll_seconds=0.1)
    with TestClient(create_app(settings)) as c:
        yield c


def ids(r) -> list[str]:  # type: ignore[no-untyped-def]
    return [i["item_id"] for i in r.json()["items"]]


def ids_of(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def get(client: TestClient, user: str, **params: object):  # type: ignore[no-untyped-def]
    r = client.get("/recommendations", params={"user_id": user, **params})
    assert r.status_code == 200, r.text
    RecommendResponse.model_validate(r.json())  # the documented schema, exactly
    return r


def test_an_event_removes_the_item_and_switches_to_fold_in(
    client: TestClient, trained_repo: Settings
) -> None:
    before = get(client, "a_user3", k=5)
    assert before.json()["source"] == "precomputed"
    top = ids(before)[0]
    ack = client.post("/events", json={"user_id": "a_user3", "item_id": top, "event_type": "click"})
    assert ack.status_code == 202 and ack.json()["online"] is True, ack.text
    after = get(client, "a_user3", k=5).json()
    assert top not in [i["item_id"] for i in after["items"]]
    assert after["strategy"] == "fold_in" and after["reason"] == "events newer than the stored list"
    assert top in after["used"]["items"] and after["feature_age_seconds"]["recent_items"] < 5
    logged = read_events(trained_repo.event_log_dir)
    assert ack.json()["event_ids"][0] in set(logged["event_id"])


def test_a_new_user_is_folded_in_from_events(client: TestClient) -> None:
    events = [{"user_id": "ev_new", "item_id": f"b{j}", "event_type": "view"} for j in (1, 2)]
    ack = client.post("/events/batch", json={"events": events})
    assert ack.json()["accepted"] == 2
    body = get(client, "ev_new", k=5).json()
    assert body["strategy"] == "fold_in" and body["reason"] == "user unknown to the model"
    assert all(i["item_id"].startswith("b") for i in body["items"])
    assert not {"b1", "b2"} & {i["item_id"] for i in body["items"]}


def test_acknowledged_events_are_all_stored(client: TestClient, trained_repo: Settings) -> None:
    acked: list[str] = []
    for n in range(20):
        batch = [
            {"user_id": f"dur{n}", "item_id": f"a{j}", "event_type": "rating", "value": 4.0}
            for j in range(5)
        ]
        acked += client.post("/events/batch", json={"events": batch}).json()["event_ids"]
    stored = set(read_events(trained_repo.event_log_dir)["event_id"])
    assert len(acked) == 100 and set(acked) <= stored


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({"item_id": "nope"}, "unknown item ids: nope"),
        ({"event_type": "teleport"}, "Input should be"),
        ({"event_type": "rating"}, "a rating event needs a value"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"user_id": "bad\u0000id"}, "String should match pattern"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_events_are_refused_with_a_reason(
    client: TestClient, event: dict[str, object], needle: str
) -> None:
    body = {"user_id": "u1", "item_id": "a1", "event_type": "view", **event}
    r = client.post("/events", json=body)
    assert r.status_code == 422 and needle in r.text


def test_a_batch_is_all_or_nothing(client: TestClient, trained_repo: Settings) -> None:
    batch = [
        {"user_id": "atomic", "item_id": "a1", "event_type": "view", "event_id": "atomic-ok"},
        {"user_id": "atomic", "item_id": "zz", "event_type": "view", "event_id": "atomic-bad"},
    ]
    assert client.post("/events/batch", json={"events": batch}).status_code == 422
    assert "atomic-ok" not in set(read_events(trained_repo.event_log_dir)["event_id"])


def test_request_exclusions_and_genre_filters(client: TestClient) -> None:
    base = ids(get(client, "a_user1", k=5))
    excluded = ids(get(client, "a_user1", k=5, exclude_item_ids=base[:2]))
    assert not set(base[:2]) & set(excluded) and len(excluded) == 5
    comedies = get(client, "a_user1", k=3, include="genres:Comedy")
    assert all(int(i[1:]) % 4 == 0 for i in ids(comedies)) and len(ids(comedies)) >= 1
    no_comedy = ids(get(client, "a_user1", k=5, exclude="genres:Comedy"))
    assert no_comedy and all(int(i[1:]) % 4 for i in no_comedy)
    capped = get(client, "a_user1", k=10, cap="genres:2").json()
    genres = [("Action" if i[0] == "a" else "Drama") for i in ids_of(capped)]
    genres += ["Comedy" for i in ids_of(capped) if int(i[1:]) % 4 == 0]
    assert capped["items"] and max(genres.count(g) for g in set(genres)) <= 2
    # the stored list ran short (two Action films at most): topped up from the user vector
    assert capped["strategy"] == "nightly_list+user_vector"
    # the same engine on the real-time path
    rt = client.post(
        "/recommendations", json={"recent_item_ids": ["a1"], "include": ["genres:Comedy"], "k": 3}
    ).json()
    assert rt["strategy"] == "fold_in" and all(int(i["item_id"][1:]) % 4 == 0 for i in rt["items"])


def test_an_unknown_filter_feature_is_a_422(client: TestClient) -> None:
    r = client.get("/recommendations", params={"user_id": "a_user1", "include": "colour:red"})
    assert r.status_code == 422 and "unknown item feature 'colour'" in r.text
    r = client.get("/recommendations", params={"user_id": "a_user1", "cap": "genres:x"})
    assert r.status_code == 422


def test_unavailable_items_disappear_from_every_path(
    client: TestClient, trained_repo: Settings
) -> None:
    top = ids(get(client, "b_user2", k=3))[0]
    set_availability(trained_repo, [top], available=False)
    try:
        deadline = time.time() + 10
        while top in ids(get(client, "b_user2", k=3)) and time.time() < deadline:
            time.sleep(0.1)
        assert top not in ids(get(client, "b_user2", k=3))
        similar = client.get(f"/items/{ids(get(client, 'b_user2', k=3))[0]}/similar").json()
        assert top not in [i["item_id"] for i in similar["items"]]
        popular = ids(get(client, "stranger_x", k=40))
        assert top not in popular
    finally:
        set_availability(trained_repo, [top], available=True)


def test_similar_items_stay_in_the_group(client: TestClient) -> None:
    r = client.get("/items/a3/similar", params={"k": 5, "explain": "true"})
    body = SimilarResponse.model_validate(r.json())
    assert r.status_code == 200 and len(body.items) == 5
    assert all(i.item_id.startswith("a") and i.item_id != "a3" for i in body.items)
    assert client.get("/items/nope/similar").status_code == 404


def test_explanations_name_an_item_the_user_liked(
    client: TestClient, trained_repo: Settings
) -> None:
    from recommender.training.artifacts import load_bundle

    bundle = load_bundle(trained_repo.artifacts_dir)
    seen = set(bundle.items.ids[bundle.user_items[bundle.users.row("a_user4")].indices])
    body = get(client, "a_user4", k=4, explain="true").json()
    for item in body["items"]:
        assert item["because_item_id"] in seen
        assert item["reason"].startswith("because you liked Action film")
    assert "reason" not in get(client, "a_user4", k=2).json()["items"][0]


def test_lineage_on_the_warm_path(client: TestClient) -> None:
    body = get(client, "a_user6", k=2).json()
    assert body["source"] == "precomputed" and body["run_id"] and body["model_version"]
    generated = datetime.fromisoformat(body["generated_at"])
    assert datetime.now(timezone.utc) - generated < timedelta(hours=1)
    assert 0 <= body["feature_age_seconds"]["list"] < 3600


def test_a_list_older_than_the_ttl_is_not_served(trained_repo: Settings) -> None:
    settings = trained_repo.replace(list_ttl_seconds=1)
    time.sleep(1.1)
    with TestClient(create_app(settings)) as c:
        body = get(c, "a_user6", k=3).json()
    assert body["source"] == "realtime" and body["strategy"] == "user_vector"
    assert body["reason"].startswith("stored list older than the list TTL")
    assert all(i["item_id"].startswith("a") for i in body["items"])


def test_metrics_expose_paths_latency_and_model(client: TestClient) -> None:
    get(client, "a_user7", k=2)
    text = client.get("/metrics").text
    for needle in (
        'reco_recommendations_total{source="precomputed",strategy="nightly_list"}',
        'reco_http_request_duration_seconds_bucket{le="0.001",route="/recommendations"}',
        "reco_serving_path_duration_seconds_count",
        'reco_redis_duration_seconds_count{op="read_user"}',
        "reco_model_info{index=",
        "reco_list_age_seconds_count",
        "reco_events_total",
    ):
        assert needle in text, needle


def test_events_are_refused_when_the_log_cannot_be_made_durable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(fd: int) -> None:  # the process edge: the disk reports an I/O error
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("recommender.events.log.os.fsync", broken_disk)
    r = client.post("/events", json={"user_id": "u_eio", "item_id": "a1", "event_type": "view"})
    assert r.status_code == 503 and "event log failed" in r.json()["detail"]
    assert 'reco_errors_total{kind="event_log"} 1.0' in client.get("/metrics").text
    monkeypatch.undo()
    ok = client.post("/events", json={"user_id": "u_eio", "item_id": "a1", "event_type": "view"})
    assert ok.status_code == 202  # the sink keeps working once the disk does


def test_concurrent_events_share_a_group_commit(client: TestClient, trained_repo: Settings) -> None:
    import concurrent.futures

    def one(n: int) -> list[str]:
        body = {"user_id": f"grp{n % 7}", "item_id": f"b{n % 20}", "event_type": "view"}
        r = client.post("/events", json=body)
        assert r.status_code == 202
        return r.json()["event_ids"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        acked = [i for ids in pool.map(one, range(80)) for i in ids]
    assert len(set(acked)) == 80
    assert set(acked) <= set(read_events(trained_repo.event_log_dir)["event_id"])
    recent = get(client, "grp3", k=3).json()
    assert recent["strategy"] == "fold_in" and len(recent["used"]["items"]) >= 1
