"""Ranking metrics at k over recommended id lists and sets of relevant ids, plus
beyond-accuracy metrics over all users' lists.

Binary relevance. The accuracy metrics follow RecBole's definitions, so numbers are comparable
with its published tables; each docstring states the normalisation. Users with no relevant items
are skipped by :func:`mean_metrics` (they cannot be scored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TypeVar

import numpy as np


def _hits(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> np.ndarray:
    return np.array([i in relevant for i in list(recommended)[:k]], dtype=bool)


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2))


def ndcg_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """DCG of the top-k (gain 1/log2(rank+1)) divided by the ideal DCG for min(|relevant|, k).

    Example: ``ndcg_at_k(["a", "b"], {"b"}, 2) == 1 / log2(3)``; empty relevant gives 0.0.
    """
    if not relevant or k <= 0:
        return 0.0
    hits = _hits(recommended, relevant, k)
    dcg = float((_discounts(len(hits)) * hits).sum())
    return dcg / float(_discounts(min(len(relevant), k)).sum())


def precision_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """Hits in the top-k divided by k (not by the list length: short lists are penalised)."""
    if k <= 0:
        return 0.0
    return float(_hits(recommended, relevant, k).sum()) / k


def recall_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """Hits in the top-k divided by |relevant| (0.0 when there are none).

    Not capped at k: a user with 30 relevant items can reach at most k/30 (RecBole's choice).
    """
    if not relevant or k <= 0:
        return 0.0
    return float(_hits(recommended, relevant, k).sum()) / len(relevant)


def map_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """Average precision: sum of precision@r at each hit rank r <= k, over min(|relevant|, k).

    Example: hits at ranks 1 and 3 with 2 relevant items give (1/1 + 2/3) / 2.
    """
    if not relevant or k <= 0:
        return 0.0
    hits = _hits(recommended, relevant, k)
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum()) / min(len(relevant), k)


def mrr_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """Reciprocal rank of the first hit within the top-k; 0.0 without a hit."""
    hits = _hits(recommended, relevant, k) if k > 0 else np.zeros(0, dtype=bool)
    first = np.flatnonzero(hits)
    return 1.0 / (first[0] + 1) if len(first) else 0.0


def hit_at_k(recommended: Sequence[object], relevant: AbstractSet[object], k: int) -> float:
    """1.0 when at least one relevant item is in the top-k, else 0.0."""
    return float(k > 0 and _hits(recommended, relevant, k).any())


Metric = Callable[[Sequence[object], AbstractSet[object], int], float]
K = TypeVar("K")
METRICS: dict[str, Metric] = {
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "recall": recall_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
    "hit": hit_at_k,
}


def mean_metric(
    metric: Metric, lists: Sequence[Sequence[object]], truth: Sequence[AbstractSet[object]], k: int
) -> float:
    """Mean of ``metric`` over users that have at least one relevant item."""
    values = [metric(rec, rel, k) for rec, rel in zip(lists, truth, strict=True) if rel]
    return float(np.mean(values)) if values else 0.0


def mean_metrics(
    lists: Sequence[Sequence[object]], truth: Sequence[AbstractSet[object]], ks: Iterable[int]
) -> dict[str, float]:
    """Every metric of :data:`METRICS` at every k, keyed ``"ndcg@10"`` and so on."""
    return {
        f"{name}@{k}": mean_metric(fn, lists, truth, k) for k in ks for name, fn in METRICS.items()
    }


def catalog_coverage(lists: Iterable[Sequence[object]], n_items: int, k: int) -> float:
    """Share of the catalog (``n_items``) that appears in at least one user's top-k."""
    if n_items <= 0:
        return 0.0
    shown = {i for rec in lists for i in list(rec)[:k]}
    return len(shown) / n_items


def novelty(
    lists: Iterable[Sequence[K]], popularity: Mapping[K, int], n_users: int, k: int
) -> float:
    """Mean self-information ``-log2(p(i))`` of recommended items, ``p(i)`` = share of training
    users who interacted with ``i`` (unseen items count as one user). Higher = less obvious."""
    values = [
        -np.log2(max(popularity.get(i, 0), 1) / max(n_users, 1))
        for rec in lists
        for i in list(rec)[:k]
    ]
    return float(np.mean(values)) if values else 0.0


def intra_list_diversity(
    lists: Iterable[Sequence[K]], vectors: Mapping[K, np.ndarray], k: int
) -> float:
    """Mean over lists of the mean pairwise cosine distance ``1 - cos`` of their top-k items
    (``vectors``: unit vectors, e.g. the model's item factors; unknown items are skipped).
    0 = every item alike; lists of fewer than two known items do not count."""
    values = []
    for rec in lists:
        rows = [vectors[i] for i in list(rec)[:k] if i in vectors]
        if len(rows) < 2:
            continue
        m = np.asarray(rows, dtype=np.float64)
        sims = m @ m.T
        n = len(rows)
        values.append(float((n * n - sims.sum()) / (n * (n - 1))))  # diagonal: 1 - 1 = 0
    return float(np.mean(values)) if values else 0.0


def average_popularity(lists: Iterable[Sequence[K]], popularity: Mapping[K, int], k: int) -> float:
    """Average recommendation popularity (ARP): mean training interaction count of the items
    in the top-k lists. A popularity-bias measure: the popularity baseline maximises it."""
    values = [popularity.get(i, 0) for rec in lists for i in list(rec)[:k]]
    return float(np.mean(values)) if values else 0.0
