"""An optional diversity re-rank of a served list: maximal marginal relevance (Carbonell and
Goldstein, 1998) over the list's first ``POOL * k`` items. Each next item maximises
``(1 - lam) * relevance - lam * (its highest cosine similarity to the items already chosen)``,
relevance being the item's score scaled to [0, 1] within the pool and similarity the cosine of
the model's item vectors. ``lam = 0`` keeps the list as it is (the default: off); larger
values trade accuracy for intra-list diversity (docs/evaluation.md measures the trade-off).
Pure; no I/O."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recommender.serving.paths import Ranked

POOL = 3  # candidates considered per slot: the path is asked for POOL * k items


def mmr_order(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Positions (into ``scores``) of the ``k`` items MMR picks, in pick order."""
    n = len(scores)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    span = s.max() - s.min()
    relevance = (s - s.min()) / span if span > 0 else np.ones(n)
    v = np.asarray(vectors, dtype=np.float64)
    sims = v @ v.T
    chosen: list[int] = []
    closest = np.full(n, -np.inf)  # each item's highest similarity to the chosen ones
    free = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        value = (1 - lam) * relevance - lam * np.where(np.isfinite(closest), closest, 0.0)
        value[~free] = -np.inf
        pick = int(np.argmax(value))  # ties: the earlier (higher-ranked) item
        chosen.append(pick)
        free[pick] = False
        closest = np.maximum(closest, sims[pick])
    return np.asarray(chosen, dtype=np.int64)


def diversify(ranked: Ranked, item_unit: np.ndarray, k: int, lam: float) -> Ranked:
    """``ranked`` (its first ``POOL * k`` items) re-ranked by MMR to ``k`` items; every
    per-item field follows. ``lam <= 0`` or a list without item rows: the first ``k``."""
    if lam <= 0 or len(ranked.rows) != len(ranked.item_ids):
        return _take(ranked, np.arange(min(k, len(ranked.item_ids))))
    pool = min(len(ranked.item_ids), POOL * k)
    order = mmr_order(
        np.asarray(ranked.scores[:pool]), item_unit[np.asarray(ranked.rows[:pool])], k, lam
    )
    return _take(ranked, order)


def _take(ranked: Ranked, order: np.ndarray) -> Ranked:
    idx = order.tolist()

    def pick(values: list | None) -> list | None:  # type: ignore[type-arg]
        return None if values is None else [values[i] for i in idx]

    return replace(
        ranked,
        item_ids=[ranked.item_ids[i] for i in idx],
        scores=[ranked.scores[i] for i in idx],
        rows=ranked.rows[order] if len(ranked.rows) else ranked.rows,
        because=pick(ranked.because),
        provenance=pick(ranked.provenance),
        moved_by=pick(ranked.moved_by),
    )
