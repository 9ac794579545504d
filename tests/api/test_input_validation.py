"""What the door accepts, through the real app (real Feast + Redis): non-finite numbers, strict
types, numeric ids, bodies that are not JSON, event timestamps, the methods a path allows, and
an OpenAPI schema that says all of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.config import Settings
from recommender.data.schema import canonical_interactions
from recommender.errors import InvalidDataset
from recommender.events.log import read_events
from recommender.events.records import EARLIEST_EVENT, FUTURE_SLACK

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}
EVENT = '{"user_id": "u_val", "item_id": "a1", "event_type": "rating", '


@pytest.fixture(scope="module")
def settings(trained_repo: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # a separate event log, so these events never reach the other tests' training data
    events = tmp_path_factory.mktemp("validation-events")
    return trained_repo.replace(events_dir=events)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    # server errors come back as 500s (as a real server answers), not as raised exceptions
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def errors(r) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, (r.status_code, r.text)
    return r.json()["detail"]


def locs(r) -> list[list[object]]:  # type: ignore[no-untyped-def]
    return [e["loc"] for e in errors(r)]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/recommendations", '{"recent_item_ids": ["a1"], "k": NaN}', ["body", "k"]),
        ("/recommendations", '{"k": Infinity}', ["body", "k"]),
        ("/recommendations", '{"profile": {"age": NaN}}', ["body", "profile", "age"]),
        ("/recommendations", '{"profile": {"age": -Infinity}}', ["body", "profile", "age"]),
        ("/events", EVENT + '"value": NaN}', ["body", "value"]),
        ("/events", EVENT + '"value": Infinity}', ["body", "value"]),
        ("/events/batch", '{"events": [' + EVENT + '"value": -Infinity}]}', None),
    ],
)
def test_non_finite_numbers_are_a_clear_422(
    client: TestClient, path: str, body: str, loc: list[object] | None
) -> None:
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 422, (r.status_code, r.text)
    detail = json.loads(r.text)["detail"]  # strict JSON: no NaN in the answer either
    expected = loc or ["body", "events", 0, "value"]
    assert expected in [e["loc"] for e in detail]
    bad = next(e for e in detail if e["loc"] == expected)
    assert bad["input"] in ("NaN", "Infinity", "-Infinity")  # what was sent, as text
    assert bad["msg"]


@pytest.mark.parametrize(
    ("path", "body", "loc", "needle"),
    [
        ("/recommendations", {"k": "5"}, ["body", "k"], "valid integer"),
        ("/recommendations", {"k": True}, ["body", "k"], "valid integer"),
        ("/recommendations", {"k": 5.5}, ["body", "k"], "valid integer"),
        ("/recommendations", {"explain": "true"}, ["body", "explain"], "valid boolean"),
        ("/recommendations", {"explain": 1}, ["body", "explain"], "valid boolean"),
        ("/recommendations", {"profile": {"age": "30"}}, ["body", "profile", "age"], "integer"),
        ("/recommendations", {"profile": {"age": 30.0}}, ["body", "profile", "age"], "integer"),
        ("/events", {"value": False}, ["body", "value"], "valid number"),
        ("/events", {"value": "4"}, ["body", "value"], "valid number"),
        ("/events", {"timestamp": 1700000000}, ["body", "timestamp"], "RFC 3339"),
        ("/events", {"timestamp": "1700000000"}, ["body", "timestamp"], "RFC 3339"),
    ],
)
def test_lax_types_are_refused(
    client: TestClient, path: str, body: dict[str, object], loc: list[object], needle: str
) -> None:
    if path == "/events":
        body = {"user_id": "u_val", "item_id": "a1", "event_type": "rating", "value": 4, **body}
    r = client.post(path, json=body)
    assert loc in locs(r), r.text
    assert needle in next(e["msg"] for e in errors(r) if e["loc"] == loc)


def test_integers_are_still_numbers(client: TestClient) -> None:
    ok = client.post(
        "/events",
        json={"user_id": "u_val", "item_id": "a1", "event_type": "rating", "value": 4},
    )
    assert ok.status_code == 202, ok.text
    assert client.post("/recommendations", json={"k": 3, "explain": False}).status_code == 200


def test_numeric_ids_are_canonical_strings(client: TestClient, settings: Settings) -> None:
    # request bodies: an integer id is the id written in decimal
    r = client.post("/recommendations", json={"user_id": 7, "recent_item_ids": [50, "a1"]})
    assert r.json()["unknown_item_ids"] == ["50"], r.text
    r = client.post(
        "/recommendations",
        json={"user_id": 7, "recent_item_ids": ["a1", "a2"], "exclude_item_ids": [50, 172]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == "7" and r.json()["used"]["items"] == ["a1", "a2"]
    # events are logged (and trained on) under the string id
    event = {"user_id": 4242, "item_id": "a1", "event_type": "view", "event_id": "numeric-ids"}
    assert client.post("/events", json=event).status_code == 202
    batch = {"events": [{**event, "user_id": 4243, "event_id": "numeric-ids-2"}]}
    assert client.post("/events/batch", json=batch).status_code == 202
    logged = read_events(settings.event_log_dir).set_index("event_id")
    assert logged.loc["numeric-ids", "user_id"] == "4242"
    assert logged.loc["numeric-ids-2", "user_id"] == "4243"


@pytest.mark.parametrize("bad", [True, 50.0, 2**70, {"id": 1}])
def test_ids_are_strings_or_integers_only(client: TestClient, bad: object) -> None:
    r = client.post("/recommendations", json={"recent_item_ids": [bad]})
    assert ["body", "recent_item_ids", 0] in locs(r), r.text
    r = client.post("/events", json={"user_id": bad, "item_id": "a1", "event_type": "view"})
    assert ["body", "user_id"] in locs(r), r.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"recent_item_ids": ["a1\xff"]}', "UTF-8"),
        (b"\xfe\xff\xd8", "UTF-8"),
        (b"[" * 50_000 + b"]" * 50_000, "nested"),
        (b'{"k": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_a_documented_422(
    client: TestClient, openapi: dict[str, Any], body: bytes, needle: str
) -> None:
    r = client.post("/recommendations", content=body, headers=JSON)
    detail = errors(r)
    assert detail[0]["loc"] == ["body"] and detail[0]["type"] == "json_invalid"
    assert needle in detail[0]["msg"]
    assert "422" in openapi["paths"]["/recommendations"]["post"]["responses"]
    r = client.post("/events", content=body, headers=JSON)
    assert errors(r)[0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/recommendations", {"GET", "POST"}),
        ("/events", {"POST"}),
        ("/items/a1/similar", {"GET"}),
    ],
)
def test_the_allow_header_lists_every_method_of_the_path(
    client: TestClient, openapi: dict[str, Any], path: str, allowed: set[str]
) -> None:
    for method in ("OPTIONS", "DELETE", "PUT"):
        r = client.request(method, path)
        assert r.status_code == 405, (method, r.status_code)
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, method
    template = "/items/{item_id}/similar" if path.startswith("/items") else path
    assert {m.upper() for m in openapi["paths"][template]} == allowed


def test_unknown_features_and_items_are_documented_422s(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for path, method in [
        ("/recommendations", "get"),
        ("/recommendations", "post"),
        ("/items/{item_id}/similar", "get"),
        ("/events", "post"),
        ("/events/batch", "post"),
    ]:
        doc = paths[path][method]["responses"]["422"]
        text = doc["description"]
        assert "unknown item" in text and "feature" in text and "UTF-8" in text, (path, text)
        schema = doc["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        fields = openapi["components"]["schemas"][schema]["properties"]
        assert {"detail", "unknown_item_ids"} <= set(fields)


def test_the_schema_says_which_types_are_accepted(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    req = schemas["RecommendRequest"]["properties"]
    assert req["k"]["type"] == "integer" and req["explain"]["type"] == "boolean"
    id_types = {alt["type"] for alt in req["recent_item_ids"]["items"]["anyOf"]}
    assert id_types == {"string", "integer"}
    event = schemas["EventIn"]["properties"]
    assert {alt["type"] for alt in event["user_id"]["anyOf"]} == {"string", "integer"}
    assert {alt.get("type") for alt in event["value"]["anyOf"]} == {"number", "null"}
    described = event["timestamp"]["description"]
    assert "1970-01-01" in described and "1 day" in described


def _event(ts: str) -> dict[str, object]:
    return {"user_id": "u_ts", "item_id": "a1", "event_type": "view", "timestamp": ts}


@pytest.mark.parametrize(
    ("ts", "needle"),
    [
        ("1600-01-01T00:00:00Z", "before 1970-01-01"),
        ("1969-12-31T23:59:59Z", "before 1970-01-01"),
        ("0001-01-01T00:00:00+01:00", "before 1970-01-01"),
        ("9999-12-31T23:59:59-23:59", "in the future"),
        ((datetime.now(timezone.utc) + timedelta(days=2)).isoformat(), "in the future"),
    ],
)
def test_implausible_event_timestamps_are_a_422_naming_the_field(
    client: TestClient, ts: str, needle: str
) -> None:
    r = client.post("/events", json=_event(ts))
    assert ["body", "timestamp"] in locs(r), r.text
    assert needle in r.text
    batch = {"events": [_event("2024-01-01T00:00:00Z"), _event(ts)]}
    r = client.post("/events/batch", json=batch)
    assert ["body", "events", 1, "timestamp"] in locs(r), r.text


def test_the_earliest_plausible_timestamp_is_accepted(
    client: TestClient, settings: Settings
) -> None:
    assert EARLIEST_EVENT == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert FUTURE_SLACK == timedelta(days=1)
    event = {**_event("1970-01-01T00:00:00Z"), "event_id": "epoch-event"}
    assert client.post("/events", json=event).status_code == 202
    naive = {**_event("1970-01-01T00:00:00"), "event_id": "epoch-naive"}  # UTC if naive
    assert client.post("/events", json=naive).status_code == 202
    logged = read_events(settings.event_log_dir).set_index("event_id")["event_timestamp"]
    assert logged["epoch-event"] == logged["epoch-naive"] == EARLIEST_EVENT


def _ingested_as(user_id: str) -> str | None:
    """The id ``reco data ingest`` stores for ``user_id``, or None if it refuses it."""
    raw = pd.DataFrame({"user_id": [user_id], "item_id": ["a1"], "timestamp": [0]})
    try:
        return str(canonical_interactions(raw)["user_id"].iloc[0])
    except InvalidDataset:
        return None


@pytest.mark.parametrize(
    "user_id",
    ["x" * 128, "x" * 129, "é" * 128, " a/b\t", "\x1fa", "a\x01b", "a\tb", "\u3000", "%2F?#"],
)
def test_the_api_takes_exactly_the_ids_ingest_takes(client: TestClient, user_id: str) -> None:
    """Issue 28.3: one id rule (recommender/data/ids.py): an id ingest stores is one the API
    answers for, under the same id, and an id ingest refuses is a 422 (query and body)."""
    expected = _ingested_as(user_id)
    for r in (
        client.get("/recommendations", params={"user_id": user_id, "k": 2}),
        client.post("/recommendations", json={"user_id": user_id, "k": 2}),
    ):
        if expected is None:
            assert r.status_code == 422, (r.status_code, r.text)
        else:
            assert r.status_code == 200, (r.status_code, r.text)
            assert r.json()["user_id"] == expected
