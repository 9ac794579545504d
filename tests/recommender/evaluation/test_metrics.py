"""Every metric by hand: empty, perfect, no match, fewer relevant items than k."""

import math

import numpy as np
import pytest

from recommender.evaluation.metrics import (
    METRICS,
    average_popularity,
    catalog_coverage,
    hit_at_k,
    intra_list_diversity,
    map_at_k,
    mean_metric,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)

TEN = ["a"] + [f"x{i}" for i in range(9)]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_perfect_ranking_scores_one(name: str) -> None:
    assert METRICS[name](["a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_no_match_empty_list_and_no_relevant_score_zero(name: str) -> None:
    fn = METRICS[name]
    assert fn(["x", "y"], {"a"}, 2) == 0.0
    assert fn([], {"a"}, 10) == 0.0
    assert fn(["a"], set(), 10) == 0.0
    assert fn(["a"], {"a"}, 0) == 0.0


def test_hit_at_rank_two_by_hand() -> None:
    assert ndcg_at_k(["x", "a"], {"a"}, 2) == pytest.approx(1 / math.log2(3))
    assert mrr_at_k(["x", "a"], {"a"}, 2) == pytest.approx(0.5)
    assert map_at_k(["x", "a"], {"a"}, 2) == pytest.approx(0.5)
    assert hit_at_k(["x", "a"], {"a"}, 1) == 0.0 and hit_at_k(["x", "a"], {"a"}, 2) == 1.0


def test_fewer_relevant_than_k() -> None:
    # one relevant item at rank 1 is perfect for the rank-aware metrics even with k=10
    assert ndcg_at_k(TEN, {"a"}, 10) == pytest.approx(1.0)
    assert map_at_k(TEN, {"a"}, 10) == pytest.approx(1.0)
    assert recall_at_k(TEN, {"a"}, 10) == pytest.approx(1.0)
    assert precision_at_k(TEN, {"a"}, 10) == pytest.approx(0.1)  # divided by k


def test_map_and_ndcg_with_two_hits_by_hand() -> None:
    rec, rel = ["a", "x", "b", "y"], {"a", "b", "c"}
    # precision at the hit ranks: 1/1 and 2/3; normalised by min(|rel|, k) = 3
    assert map_at_k(rec, rel, 4) == pytest.approx((1 + 2 / 3) / 3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(rec, rel, 4) == pytest.approx(dcg / idcg)
    assert recall_at_k(rec, rel, 4) == pytest.approx(2 / 3)
    assert precision_at_k(rec, rel, 4) == pytest.approx(0.5)
    # k cuts the list before the second hit
    assert recall_at_k(rec, rel, 2) == pytest.approx(1 / 3)
    assert map_at_k(rec, rel, 2) == pytest.approx(1 / 2)


def test_means_skip_users_without_relevant_items() -> None:
    assert mean_metric(recall_at_k, [["a"], ["b"]], [{"a"}, set()], 1) == 1.0
    out = mean_metrics([["a", "x"], ["x", "b"]], [{"a"}, {"b"}], (1, 2))
    assert out["hit@1"] == 0.5 and out["hit@2"] == 1.0 and out["mrr@2"] == pytest.approx(0.75)
    assert set(out) == {f"{m}@{k}" for m in METRICS for k in (1, 2)}


def test_coverage_novelty_and_popularity_by_hand() -> None:
    lists = [["a", "b", "c"], ["a", "d"]]
    assert catalog_coverage(lists, 10, 2) == pytest.approx(3 / 10)  # a, b, d
    assert catalog_coverage([], 0, 2) == 0.0
    pop = {"a": 8, "b": 2, "d": 1}
    # p(a)=8/8 -> 0 bits, p(b)=2/8 -> 2 bits, p(d)=1/8 -> 3 bits; top-2 items: a, b, a, d
    assert novelty(lists, pop, 8, 2) == pytest.approx((0 + 2 + 0 + 3) / 4)
    assert average_popularity(lists, pop, 2) == pytest.approx((8 + 2 + 8 + 1) / 4)
    assert novelty([], pop, 8, 2) == 0.0 and average_popularity([[]], pop, 2) == 0.0


def test_intra_list_diversity_by_hand() -> None:
    e = np.eye(3)
    vectors = {"x": e[0], "y": e[1], "x2": e[0], "z": e[2]}
    assert intra_list_diversity([["x", "x2"]], vectors, 10) == 0.0  # alike
    assert intra_list_diversity([["x", "y", "z"]], vectors, 10) == 1.0  # orthogonal
    # mean over lists; unknown items and one-item lists are skipped; k cuts the list
    assert intra_list_diversity([["x", "x2"], ["x", "y"], ["q"]], vectors, 10) == 0.5
    assert intra_list_diversity([["x", "x2", "y"]], vectors, 2) == 0.0
