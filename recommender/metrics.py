"""Ranking metrics at k over recommended id lists and sets of relevant ids.

Binary relevance. Users with no relevant items are skipped by :func:`mean_metric`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def ndcg_at_k(recommended: Sequence[object], relevant: set[object], k: int) -> float:
    """DCG of the top-k (gain 1/log2(rank+1)) divided by the ideal DCG for min(|relevant|, k).

    Example: ``ndcg_at_k(["a", "b"], {"b"}, 2) == 1 / log2(3)``; empty relevant gives 0.0.
    """
    if not relevant or k <= 0:
        return 0.0
    gains = [1.0 / np.log2(r + 2) for r, i in enumerate(list(recommended)[:k]) if i in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return float(sum(gains) / ideal)


def precision_at_k(recommended: Sequence[object], relevant: set[object], k: int) -> float:
    """Hits in the top-k divided by k (not by the list length)."""
    if k <= 0:
        return 0.0
    return sum(1 for i in list(recommended)[:k] if i in relevant) / k


def recall_at_k(recommended: Sequence[object], relevant: set[object], k: int) -> float:
    """Hits in the top-k divided by the number of relevant items (0.0 when there are none)."""
    if not relevant:
        return 0.0
    return sum(1 for i in list(recommended)[:k] if i in relevant) / len(relevant)


Metric = Callable[[Sequence[object], set[object], int], float]
METRICS: dict[str, Metric] = {"ndcg": ndcg_at_k, "precision": precision_at_k, "recall": recall_at_k}


def mean_metric(
    metric: Metric, lists: Sequence[Sequence[object]], truth: Sequence[set[object]], k: int
) -> float:
    """Mean of ``metric`` over users that have at least one relevant item."""
    values = [metric(rec, rel, k) for rec, rel in zip(lists, truth, strict=True) if rel]
    return float(np.mean(values)) if values else 0.0
