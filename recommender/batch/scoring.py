"""Batch scoring of every known user in bounded memory (pure; no I/O).

The nightly job cuts the users into *chunks* (the unit of progress, resume and distribution)
and each chunk into *batches* (the unit of memory): a batch's ``batch_size x n_items`` score
matrix is the only dense one that ever exists, so peak memory is the model plus one batch,
whatever the number of users. Top-N selection with seen items excluded is implicit's
``topk`` (a blocked matrix product plus a per-row heap, in C++ threads:
:func:`recommender.models.topn.factor_top_n`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.models.topn import factor_top_n
from recommender.training.artifacts import ModelBundle


@dataclass(frozen=True)
class Chunk:
    """Users ``start`` (inclusive) to ``stop`` (exclusive) of the model's user vocabulary."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_chunks(n_users: int, chunk_users: int) -> list[Chunk]:
    """Consecutive chunks of at most ``chunk_users`` users covering ``0..n_users``.

    Example: ``plan_chunks(5, 2)`` -> chunks 0:[0, 2), 1:[2, 4), 2:[4, 5).
    """
    if chunk_users < 1:
        raise ValueError("chunk_users must be at least 1")
    return [
        Chunk(i, start, min(start + chunk_users, n_users))
        for i, start in enumerate(range(0, n_users, chunk_users))
    ]


def scoring_memory_mb(batch_size: int, n_items: int, chunk_users: int, n: int) -> float:
    """What scoring plans to hold besides the model: one batch's dense ``batch_size x n_items``
    scores (x3: implicit's scores, the mask and the partition) and two chunks' lists in flight
    (rows and scores, 8 bytes an entry, x3 for their encoded copies).

    Example: ``scoring_memory_mb(1024, 50_000, 50_000, 100)`` is about 800 MB."""
    batch = batch_size * n_items * 4 * 3
    chunks = 2 * chunk_users * n * 8 * 3
    return (batch + chunks) / 2**20


def top_n_lists(
    bundle: ModelBundle, n: int, batch_size: int = 1024, user_rows: np.ndarray | None = None
) -> pd.DataFrame:
    """Every known user's top-N (seen items excluded) as ``user_id, rec_item_ids,
    rec_scores``, scored one batch at a time (the nightly job's lists, as a DataFrame);
    ``user_rows``: only these model users (a replay's judged users)."""
    rows = np.arange(len(bundle.users)) if user_rows is None else np.asarray(user_rows)
    every = user_rows is None  # no copy of the factors and the matrix for everyone
    item_rows, scores = factor_top_n(
        bundle.als.user_factors if every else bundle.als.user_factors[rows],
        bundle.als.item_factors,
        bundle.user_items if every else bundle.user_items[rows],
        n,
        batch_size,
    )
    return lists_frame(bundle, bundle.users.ids[rows], item_rows, scores)


def lists_frame(
    bundle: ModelBundle, user_ids: np.ndarray, item_rows: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """``user_id, rec_item_ids, rec_scores`` from top-N item rows and scores padded with -1
    (:func:`~recommender.models.topn.factor_top_n`'s shape, the ranked lists' too)."""
    item_ids = bundle.items.ids
    listed = item_rows >= 0
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "rec_item_ids": [
                item_ids[r[m]].tolist() for r, m in zip(item_rows, listed, strict=True)
            ],
            "rec_scores": [s[m].tolist() for s, m in zip(scores, listed, strict=True)],
        }
    )
