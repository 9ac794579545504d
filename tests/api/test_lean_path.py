"""The compiled GET /recommendations (api/fastpath.py) answers exactly like FastAPI's own
handling of the same route: same status, same body (but the random recommendation_id), for
valid requests on every path and for every kind of invalid query."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import _runtime
from api.fastpath import compile_routes
from api.main import create_app
from api.middleware import LEAN_ROUTES, Gateway
from recommender.config import Settings
from recommender.featurestore.repo import open_store, push_recent_items

pytestmark = pytest.mark.integration

QUERIES = [
    {"user_id": "a_user0", "k": "5"},  # precomputed
    {"user_id": "b_user3", "k": "7", "explain": "true"},
    {"user_id": "a_user1", "k": "10", "exclude_item_ids": ["a1", "a2"], "include": "genres:Action"},
    {"user_id": "a_user1", "k": "10", "exclude": "genres:Comedy", "cap": "genres:2"},
    {"user_id": "lean_pushed", "k": "4"},  # fold-in of pushed events
    {"user_id": "total_stranger", "k": "3"},  # popular
    {"user_id": "  a_user0  ", "k": "2"},  # stripped
    {"user_id": "12345"},  # default k
    {"user_id": "a_user0", "k": ["3", "4"]},  # repeated: the last one
    {"user_id": "a_user1", "include": "colour:red"},  # a domain 422 (unknown feature)
    {},  # user_id missing
    {"user_id": ""},
    {"user_id": "   "},
    {"user_id": "x" * 129},
    {"user_id": "a\x01b"},
    {"user_id": "a_user0", "k": "0"},
    {"user_id": "a_user0", "k": "101"},
    {"user_id": "a_user0", "k": "abc"},
    {"user_id": "a_user0", "k": "NaN"},
    {"user_id": "a_user0", "k": "2.5"},
    {"user_id": "a_user0", "explain": "maybe"},
    {"user_id": "a_user0", "cap": "genres:0"},
    {"user_id": "a_user0", "include": "nocolon"},
    {"user_id": "a_user0", "exclude_item_ids": ["ok", ""]},
    {"k": "abc", "cap": "bad", "include": "x"},  # several errors at once, in order
    {"user_id": "a_user0", "unknown_param": "1"},
]


def _gateway(app: FastAPI) -> Gateway:
    layer = app.middleware_stack
    while not isinstance(layer, Gateway):
        layer = layer.app  # type: ignore[union-attr]
    return layer


@pytest.fixture(scope="module")
def client(trained_repo: Settings) -> Iterator[TestClient]:
    push_recent_items(open_store(trained_repo), "lean_pushed", ["a3", "a4"])
    with TestClient(create_app(trained_repo)) as c:
        yield c


def _answer(client: TestClient, lean: bool, params: dict) -> tuple[int, object, dict]:  # type: ignore[type-arg]
    """Status, body without the random id and the ages, and the ages (time passes)."""
    _gateway(client.app).lean = lean  # type: ignore[arg-type]
    r = client.get("/recommendations", params=params)
    body = r.json()
    ages = {}
    if isinstance(body, dict):
        body.pop("recommendation_id", None)
        ages = body.pop("feature_age_seconds", {})
    return r.status_code, body, ages


@pytest.mark.parametrize("params", QUERIES, ids=range(len(QUERIES)))
def test_the_compiled_route_answers_like_fastapi(client: TestClient, params: dict) -> None:  # type: ignore[type-arg]
    client.get("/recommendations", params={"user_id": "warm_up"})
    assert _gateway(client.app)._compiled  # the route compiled  # type: ignore[arg-type]
    status, body, ages = _answer(client, True, params)
    fastapi_status, fastapi_body, fastapi_ages = _answer(client, False, params)
    assert (status, body) == (fastapi_status, fastapi_body)
    assert ages.keys() == fastapi_ages.keys()
    assert all(abs(ages[k] - fastapi_ages[k]) < 5 for k in ages)


def test_the_route_compiles_and_overrides_go_through_fastapi(trained_repo: Settings) -> None:
    app = create_app(trained_repo)
    assert set(compile_routes(app, set(LEAN_ROUTES))) == {"/recommendations"}
    assert compile_routes(app, {("POST", "/recommendations"), ("POST", "/events")}) == {}
    with TestClient(app) as c:
        rt = app.state.runtime

        async def same_runtime():  # type: ignore[no-untyped-def]
            return rt

        app.dependency_overrides[_runtime] = same_runtime
        r = c.get("/recommendations", params={"user_id": "a_user0", "k": 2})
        assert r.status_code == 200 and len(r.json()["items"]) == 2
        assert _gateway(app)._compiled is None  # never needed: FastAPI answered


def test_metrics_label_the_compiled_route(client: TestClient) -> None:
    _gateway(client.app).lean = True  # type: ignore[arg-type]
    client.get("/recommendations", params={"user_id": "a_user0", "k": 1})
    client.get("/recommendations", params={"user_id": "a_user0", "k": 0})
    text = client.get("/metrics").text
    assert 'reco_http_requests_total{method="GET",route="/recommendations",status="200"}' in text
    assert 'reco_http_requests_total{method="GET",route="/recommendations",status="422"}' in text
