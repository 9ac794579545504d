"""The hybrid's pure decisions on a bundle fitted from two taste groups (no Feast, no Redis)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recommender.batch.scoring import top_n_lists
from recommender.serving import paths
from recommender.training.artifacts import ModelBundle
from tests.support.bundles import two_group_bundle

B_PROFILE = {"age": 47, "gender": "F", "occupation": "artist"}


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return two_group_bundle()


def test_fold_in_follows_the_items(bundle: ModelBundle) -> None:
    ranked = paths.realtime(bundle, 5, recent_item_ids=["a1", "a2"])
    assert (ranked.source, ranked.strategy) == ("realtime", "fold_in")
    assert all(i.startswith("a") for i in ranked.item_ids) and "a1" not in ranked.item_ids
    assert ranked.used == {"items": ["a1", "a2"]}


def test_the_profile_prior_is_added_for_new_users(bundle: ModelBundle) -> None:
    plain = paths.realtime(bundle, 5, ["a1"], profile=B_PROFILE, prior_weight=0.0)
    assert all(i.startswith("a") for i in plain.item_ids)
    # an overwhelming prior from a group-b profile drags the list to group b: it is applied
    dragged = paths.realtime(bundle, 5, ["a1"], profile=B_PROFILE, prior_weight=100.0)
    assert all(i.startswith("b") for i in dragged.item_ids)
    assert dragged.used["profile"] == ["age=45-49", "gender=f", "occupation=artist"]
    # the default prior is a nudge: one item still decides
    default = paths.realtime(bundle, 5, ["a1"], profile=B_PROFILE)
    assert all(i.startswith("a") for i in default.item_ids)


def test_profile_only_and_nothing_known(bundle: ModelBundle) -> None:
    ranked = paths.realtime(bundle, 5, profile=B_PROFILE)
    assert ranked.strategy == "profile" and all(i.startswith("b") for i in ranked.item_ids)
    assert paths.realtime(bundle, 5).source == "popular"


def test_nightly_lists_exclude_seen_items_and_stay_in_group(bundle: ModelBundle) -> None:
    lists = top_n_lists(bundle, n=5, batch_size=7)
    assert len(lists) == len(bundle.users)
    for user_id, items in zip(lists["user_id"], lists["rec_item_ids"], strict=True):
        row = bundle.users.row(user_id)
        seen = set(bundle.items.ids[bundle.user_items[row].indices])
        assert items and not seen & set(items)
        assert all(i.startswith(user_id[0]) for i in items)


def test_a_stored_two_stage_list_names_its_retrievers_after_the_rules(bundle: ModelBundle) -> None:
    """Masks stay with their items through the rules; items topped up from the user's vector
    are ALS's; a list stored without masks (one model's) names none."""
    row = bundle.users.row("a_user0")
    seen = set(bundle.items.ids[bundle.user_items[row].indices])
    unseen = [i for i in bundle.items.ids if i.startswith("a") and i not in seen][:3]
    stored = {
        "item_ids": unseen,
        "scores": [3.0, 2.0, 1.0],
        "sources": [0b011, 0b100, 0b001],
        "source_names": ["als", "ease", "recent"],
    }
    rules = paths.Rules().with_excluded(bundle.items.rows([unseen[1]]))
    ranked = paths.from_precomputed(bundle, stored, 4, rules, user_row=row)
    assert ranked.item_ids[:2] == [unseen[0], unseen[2]]
    assert ranked.provenance is not None and len(ranked.provenance) == len(ranked.item_ids) == 4
    assert ranked.provenance[:2] == [["als", "ease"], ["als"]]
    assert ranked.provenance[2:] == [["als"], ["als"]]  # the user's vector
    plain = paths.from_precomputed(bundle, {**stored, "sources": []}, 2)
    assert plain.provenance is None


def test_a_new_users_fold_in_is_blended_with_popularity_by_the_bundles_weight() -> None:
    bundle = two_group_bundle()
    plain = paths.realtime(bundle, 8, recent_item_ids=["a1"])
    assert "popularity_blend" not in plain.used
    blended = replace(bundle, manifest=bundle.manifest.model_copy(update={"popularity_blend": 1.0}))
    ranked = paths.realtime(blended, 8, recent_item_ids=["a1"])
    # all weight on popularity: the most popular items the user has not got, in that order
    popular = [
        bundle.items.ids[r] for r in bundle.popularity.ranking if bundle.items.ids[r] != "a1"
    ]
    assert ranked.item_ids == popular[:8] and ranked.used["popularity_blend"] == 1.0
    assert ranked.strategy == "fold_in" and "a1" not in ranked.item_ids
    # known users are ranked from their vector as before, whatever the weight
    user = bundle.users.ids[0]
    row = bundle.users.row(str(user))
    mine = paths.realtime(blended, 5, recent_item_ids=["a1"], user_row=row)
    assert mine.item_ids == paths.realtime(bundle, 5, recent_item_ids=["a1"], user_row=row).item_ids
