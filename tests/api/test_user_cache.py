"""The warm path's in-process cache (RECO_USER_CACHE_ENTRIES) is invalidated by Redis itself:
an event for the user and a rewritten list are both visible in the very next response."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.config import Settings
from recommender.featurestore.names import list_view, precomputed_service
from recommender.featurestore.repo import online_row, open_store, write_lists_feast

pytestmark = pytest.mark.integration
EVENT_USER, LIST_USER = "b_user17", "b_user19"  # used by no other test (their rows change)


def _get(client: TestClient, user: str) -> dict:  # type: ignore[type-arg]
    r = client.get("/recommendations", params={"user_id": user, "k": 3})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_events_and_list_writes_reach_the_next_response(trained_repo: Settings) -> None:
    settings = trained_repo.replace(user_cache_entries=1000)
    store = open_store(settings)
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        live = runtime.live
        reader = runtime.online.readers[live.slot]

        first = _get(client, EVENT_USER)
        assert first["source"] == "precomputed"
        hits = reader.hits
        assert _get(client, EVENT_USER)["items"] == first["items"] and reader.hits == hits + 1

        # an event: Feast's push rewrites the user's hash, Redis invalidates it at once
        ack = client.post(
            "/events", json={"user_id": EVENT_USER, "item_id": "b1", "event_type": "click"}
        ).json()
        assert ack["online"] is True
        after = _get(client, EVENT_USER)
        assert after["source"] == "realtime"
        assert after["reason"] == "events newer than the stored list"

        # a list rewritten in the live slot (as a rerun of the night would)
        original = online_row(store, precomputed_service(live.slot), LIST_USER)
        before = _get(client, LIST_USER)  # cached now
        assert before["source"] == "precomputed"
        items = ["b2", "b4", "b6", "b8"]
        rewritten = pd.DataFrame(
            {
                "user_id": [LIST_USER],
                "rec_item_ids": [items],
                "rec_scores": [[0.9, 0.8, 0.7, 0.6]],
                "model_version": [original["model_version"]],
                "run_id": [live.run_id],
                "event_timestamp": [pd.Timestamp(datetime.now(timezone.utc))],
            }
        )
        try:
            write_lists_feast(store, list_view(live.slot), rewritten)
            got = _get(client, LIST_USER)
            assert [i["item_id"] for i in got["items"]] == items[:3]
        finally:
            restored = rewritten.assign(
                rec_item_ids=[original["rec_item_ids"]],
                rec_scores=[original["rec_scores"]],
                event_timestamp=[pd.Timestamp(before["generated_at"])],
            )
            write_lists_feast(store, list_view(live.slot), restored)
        assert _get(client, LIST_USER)["items"] == before["items"]
