"""The hybrid's decision when the online store does not answer (issue 17.11): the best path
the inputs still allow, not popularity for everyone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from recommender.serving import hybrid
from recommender.serving.rules import Catalog
from recommender.training.artifacts import ModelBundle
from recommender.training.manifest import PathEvidence, ServedPaths
from tests.support.bundles import two_group_bundle
from tests.support.ranked import ranked_bundle

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


def _evidence(route_new_1: str, route_known: str) -> ServedPaths:
    def path(name: str, route: str) -> PathEvidence:
        ndcg, fallback = (0.1, 0.2) if route == "popular" else (0.3, 0.2)
        return PathEvidence(
            path=name,
            users=50,
            ndcg=ndcg,
            fallback_ndcg=fallback,
            ratio=ndcg / fallback,
            diff_low=-0.2,
            diff_high=0.0,
            route=route,  # type: ignore[arg-type]
        )

    return ServedPaths(
        cutoff="2026-11-01T00:00:00+00:00",
        paths={
            "new:1": path("new:1", route_new_1),
            "new:3": path("new:3", "model"),
            "known": path("known", route_known),
        },
    )


def _with_evidence(bundle: ModelBundle, evidence: ServedPaths) -> ModelBundle:
    return replace(bundle, manifest=bundle.manifest.model_copy(update={"served_paths": evidence}))


def _served(bundle: ModelBundle, req: hybrid.Request, ctx: hybrid.Context) -> hybrid.Ranked:
    catalog = Catalog.everything_available(len(bundle.items))
    return hybrid.recommend(bundle, catalog, req, ctx, NOW, timedelta(days=3))[0]


def test_a_path_that_lost_to_popularity_is_served_popularity_and_says_so(
    bundle: ModelBundle,
) -> None:
    routed = _with_evidence(bundle, _evidence("popular", "model"))
    # one or two known items: the new:1 path, routed
    for items in (("a1",), ("a1", "a2")):
        ranked = _served(routed, hybrid.Request(None, 5, recent_item_ids=items), hybrid.Context())
        assert (ranked.source, ranked.strategy) == ("popular", "popularity")
        assert ranked.reason is not None and "new:1 path routed to popularity" in ranked.reason
        assert "0.1000 against popularity's 0.2000" in ranked.reason
        assert not set(items) & set(ranked.item_ids)  # what the user has is still excluded
    # three items take new:3, which the model serves; without evidence nothing is routed
    req = hybrid.Request(None, 5, recent_item_ids=("a1", "a2", "a3"))
    assert _served(routed, req, hybrid.Context()).strategy == "fold_in"
    plain = _served(bundle, hybrid.Request(None, 5, recent_item_ids=("a1",)), hybrid.Context())
    assert plain.strategy == "fold_in"


def test_a_known_users_routed_list_is_popularity_without_their_seen_items(
    bundle: ModelBundle,
) -> None:
    user = next(u for u in bundle.users.ids.tolist() if str(u).startswith("a"))
    row = bundle.users.row(str(user))
    stored = bundle.items.ids[:3].tolist()
    ctx = hybrid.Context(list_item_ids=stored, list_scores=[3.0, 2.0, 1.0], list_ts=NOW)
    kept = _served(
        _with_evidence(bundle, _evidence("model", "model")), hybrid.Request(user, 3), ctx
    )
    assert kept.source == "precomputed"
    routed = _served(
        _with_evidence(bundle, _evidence("model", "popular")), hybrid.Request(user, 3), ctx
    )
    assert routed.source == "popular" and "known path routed to popularity" in (routed.reason or "")
    seen = set(bundle.items.ids[bundle.user_items[row].indices].tolist())
    assert not seen & set(routed.item_ids)


def test_a_list_another_model_version_wrote_is_not_served(bundle: ModelBundle) -> None:
    user = next(u for u in bundle.users.ids.tolist() if str(u).startswith("a"))
    stored = bundle.items.ids[:3].tolist()
    ctx = hybrid.Context(
        list_item_ids=stored, list_scores=[3.0, 2.0, 1.0], list_ts=NOW, list_model_version="other"
    )
    ranked = _served(bundle, hybrid.Request(user, 3), ctx)
    assert ranked.source == "realtime" and "stored list of model other" in (ranked.reason or "")
    ctx = replace(ctx, list_model_version=bundle.version)
    assert _served(bundle, hybrid.Request(user, 3), ctx).source == "precomputed"


def test_a_ranked_bundles_new_users_get_the_one_stage_fold_in_where_it_won() -> None:
    bundle, items, catalog = ranked_bundle()
    evidence = ServedPaths(
        cutoff="2024-03-01T00:00:00+00:00",
        paths={
            name: PathEvidence(
                path=name,
                users=50,
                ndcg=0.2,
                fallback_ndcg=0.25,
                ratio=0.8,
                diff_low=-0.1,
                diff_high=0.0,
                route=route,  # type: ignore[arg-type]
                one_stage_ndcg=0.3,
            )
            for name, route in (("new:1", "one_stage"), ("new:3", "model"))
        },
    )
    routed = _with_evidence(bundle, evidence)
    a_items = [i for i in bundle.items.ids.tolist() if str(i).startswith("a")]

    def serve(served: ModelBundle, recent: tuple[str, ...]) -> hybrid.Ranked:
        req = hybrid.Request(None, 5, recent_item_ids=recent)
        return hybrid.recommend(
            served, catalog, req, hybrid.Context(), NOW, timedelta(days=3), ranking_items=items
        )[0]

    one = serve(routed, tuple(a_items[:1]))
    assert (one.source, one.strategy) == ("realtime", "fold_in")
    assert "new:1 path served by the one-stage fold-in" in (one.reason or "")
    assert "one-stage fold-in 0.3000" in (one.reason or "")
    # three items take new:3, which the two-stage path serves; so does a bundle without evidence
    assert serve(routed, tuple(a_items[:3])).strategy == "two_stage"
    assert serve(bundle, tuple(a_items[:1])).strategy == "two_stage"
