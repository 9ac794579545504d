"""The direct Feast-layout reader returns what Feast's own get_online_features returns."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from recommender.config import Settings
from recommender.featurestore.layout import FeastLayout, ViewSpec
from recommender.featurestore.repo import open_store, push_recent_items, write_profile
from recommender.serving.hybrid import USER_VIEWS

pytestmark = pytest.mark.integration


def test_layout_matches_get_online_features(trained_repo: Settings) -> None:
    store = open_store(trained_repo)
    push_recent_items(store, "a_user9", ["a1", "a2"])
    write_profile(store, "a_user9", {"age": 30, "gender": "M", "occupation": "engineer"})
    layout = FeastLayout.from_store(store, "user_id", USER_VIEWS)
    client = redis.Redis.from_url(trained_repo.redis.url)
    got = layout.decode(client.hmget(layout.key("a_user9"), layout.fields))
    features = [f"{v.name}:{f}" for v in layout.views for f in v.features]
    feast = store.get_online_features(
        features=features, entity_rows=[{"user_id": "a_user9"}], full_feature_names=True
    ).to_dict(include_event_timestamps=True)
    assert "user_recommendations_a" in got  # the nightly run filled slot a
    for view in layout.views:
        if view.name not in got:  # the other list slot: never written yet
            assert all(feast[f"{view.name}__{f}"][0] is None for f in view.features)
            continue
        for f in view.features:
            expected = feast[f"{view.name}__{f}"][0]
            value = got[view.name][f]
            if isinstance(expected, list) and expected and isinstance(expected[0], float):
                assert value == pytest.approx(expected)
            else:
                assert value == expected, (view.name, f)
        ts = feast[f"{view.name}__{view.features[0]}__ts"][0]
        assert int(got[view.name]["_ts"].timestamp()) == ts  # Feast reports whole seconds
    assert got["user_recent_items"]["recent_item_ids"] == ["a1", "a2"]


def test_absent_and_expired_views_are_dropped() -> None:
    from datetime import datetime, timezone

    from feast.protos.feast.types.Value_pb2 import Value
    from google.protobuf.timestamp_pb2 import Timestamp

    layout = FeastLayout(
        "p", "user_id", [ViewSpec("a", ("x",), timedelta(days=1)), ViewSpec("b", ("y",), None)]
    )
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    old = Timestamp(seconds=int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()))
    val = Value(int64_val=3).SerializeToString()
    got = layout.decode([val, old.SerializeToString(), val, old.SerializeToString()], now)
    assert "a" not in got and got["b"]["y"] == 3  # ttl 1 day vs. no ttl
    assert layout.decode([None, None, None, None], now) == {}
    assert layout.key("u") != layout.key("v") and len(layout.fields) == 4
    # a cached reply decoded once, its ttl checked per request: the same as decoding anew
    raw = [val, old.SerializeToString(), val, old.SerializeToString()]
    every = layout.decode_all(raw)
    assert set(every) == {"a", "b"}
    assert layout.fresh(every, now) == layout.decode(raw, now)
    assert layout.fresh(every, datetime(2026, 1, 1, 12, tzinfo=timezone.utc)) == every
    # the memoised key is the key built anew
    fresh_layout = FeastLayout("p", "user_id", layout.views)
    assert layout.key("u") == fresh_layout.key("u") and layout.key("u") is layout.key("u")
