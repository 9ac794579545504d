"""Maximal marginal relevance on vectors with a known answer, and through the hybrid."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from recommender.evaluation.metrics import intra_list_diversity
from recommender.serving import hybrid
from recommender.serving.diversity import diversify, mmr_order
from recommender.serving.paths import Ranked
from recommender.serving.rules import Catalog
from tests.support.bundles import two_group_bundle

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_mmr_picks_the_best_then_what_is_unlike_it() -> None:
    # items 0-2 point one way (0 scores best), item 3 the other way, scored lowest
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert mmr_order(scores, vectors, 2, lam=0.0).tolist() == [0, 1]  # relevance only
    assert mmr_order(scores, vectors, 2, lam=0.5).tolist() == [0, 3]  # the unlike one second
    assert mmr_order(scores, vectors, 4, lam=0.5).tolist()[:2] == [0, 3]
    assert mmr_order(scores[:0], vectors[:0], 3, 0.5).tolist() == []


def test_diversify_keeps_every_per_item_field_in_step() -> None:
    ranked = Ranked(
        item_ids=["a", "b", "c", "d"],
        scores=[0.9, 0.8, 0.7, 0.1],
        source="realtime",
        strategy="fold_in",
        model_version="v",
        rows=np.array([0, 1, 2, 3]),
        because=["x", "y", "z", "w"],
    )
    unit = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    out = diversify(ranked, unit, 2, 0.5)
    assert (out.item_ids, out.scores, out.because) == (["a", "d"], [0.9, 0.1], ["x", "w"])
    assert out.rows.tolist() == [0, 3]
    assert diversify(ranked, unit, 2, 0.0).item_ids == ["a", "b"]  # off: the first k


def test_the_served_list_gets_more_diverse_with_the_knob() -> None:
    bundle = two_group_bundle()
    catalog = Catalog.everything_available(len(bundle.items))
    vectors = dict(zip(bundle.items.ids.tolist(), bundle.item_unit, strict=True))
    req = hybrid.Request(None, 5, recent_item_ids=("a1", "b1"))

    def served(lam: float) -> list[str]:
        ranked, _ = hybrid.recommend(
            bundle, catalog, req, hybrid.Context(), NOW, timedelta(days=3), diversity=lam
        )
        assert len(ranked.item_ids) == 5 and not {"a1", "b1"} & set(ranked.item_ids)
        return ranked.item_ids

    plain, mixed = served(0.0), served(0.9)
    assert intra_list_diversity([mixed], vectors, 5) >= intra_list_diversity([plain], vectors, 5)
    assert plain != mixed
