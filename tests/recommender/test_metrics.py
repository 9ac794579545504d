import math

import pytest

from recommender.metrics import mean_metric, ndcg_at_k, precision_at_k, recall_at_k


def test_perfect_ranking() -> None:
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)
    assert precision_at_k(["a", "b"], {"a", "b"}, 2) == 1.0
    assert recall_at_k(["a", "b"], {"a", "b"}, 2) == 1.0


def test_no_match_and_empty() -> None:
    assert ndcg_at_k(["x", "y"], {"a"}, 2) == 0.0
    assert ndcg_at_k([], {"a"}, 10) == 0.0
    assert ndcg_at_k(["a"], set(), 10) == 0.0
    assert recall_at_k(["a"], set(), 10) == 0.0
    assert precision_at_k([], {"a"}, 10) == 0.0


def test_hit_at_rank_two_by_hand() -> None:
    assert ndcg_at_k(["x", "a"], {"a"}, 2) == pytest.approx(1 / math.log2(3))


def test_fewer_relevant_than_k_uses_ideal_of_relevant_count() -> None:
    # one relevant item at rank 1 is perfect even with k=10
    assert ndcg_at_k(["a"] + [f"x{i}" for i in range(9)], {"a"}, 10) == pytest.approx(1.0)
    assert precision_at_k(["a"] + [f"x{i}" for i in range(9)], {"a"}, 10) == pytest.approx(0.1)


def test_mean_skips_users_without_relevant_items() -> None:
    assert mean_metric(recall_at_k, [["a"], ["b"]], [{"a"}, set()], 1) == 1.0
