"""The hybrid's decision when the online store does not answer (issue 17.11): the best path
the inputs still allow, not popularity for everyone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from recommender.serving import hybrid
from recommender.serving.rules import Catalog
from recommender.training.artifacts import ModelBundle
from tests.support.bundles import two_group_bundle

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
DOWN = "online store unavailable: connection refused"


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return two_group_bundle()


def _serve(bundle: ModelBundle, req: hybrid.Request) -> hybrid.Ranked:
    catalog = Catalog.everything_available(len(bundle.items))
    ranked, ages = hybrid.recommend(
        bundle, catalog, req, None, NOW, timedelta(days=3), unavailable_reason=DOWN
    )
    assert ages == {}
    return ranked


def test_store_down_new_user_with_recent_items_is_folded_in(bundle: ModelBundle) -> None:
    ranked = _serve(bundle, hybrid.Request(None, 5, recent_item_ids=("a1", "a2")))
    assert (ranked.source, ranked.strategy) == ("realtime", "fold_in")
    assert all(i.startswith("a") for i in ranked.item_ids)
    assert DOWN in ranked.reason and "request" in ranked.reason


def test_store_down_known_user_is_ranked_from_the_model_vector(bundle: ModelBundle) -> None:
    user = next(u for u in bundle.users.ids.tolist() if str(u).startswith("a"))
    ranked = _serve(bundle, hybrid.Request(str(user), 5))
    assert ranked.source == "realtime"
    assert all(i.startswith("a") for i in ranked.item_ids)
    assert DOWN in ranked.reason and "model" in ranked.reason


def test_store_down_and_nothing_known_is_popularity(bundle: ModelBundle) -> None:
    ranked = _serve(bundle, hybrid.Request("never-seen", 5))
    assert ranked.source == "popular" and ranked.reason == DOWN
