"""The model contract every recommender implements, and the shared top-N helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.sparse import csr_matrix


@runtime_checkable
class Recommender(Protocol):
    """Fit on a users x items CSR; recommend by matrix row; save/load as npz (no pickle)."""

    name: str

    def fit(self, user_items: csr_matrix) -> Recommender: ...

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item rows and scores per user, excluding items in ``user_items``' rows.

        ``user_items`` has one row per entry of ``user_rows``. Rows are padded with -1 (and
        score ``-inf``) when fewer than ``n`` items are left.
        """
        ...

    def params(self) -> dict[str, Any]: ...

    def save(self, directory: Path) -> list[str]: ...

    @classmethod
    def load(cls, directory: Path) -> Recommender: ...


def top_n_excluding(scores: np.ndarray, seen: csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a dense score block after masking ``seen`` entries; ties go to
    the lower item index.

    Example: scores ``[[3, 2, 1]]`` with item 0 seen and ``n=2`` give ids ``[[1, 2]]``.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    n_eff = min(n, scores.shape[1])
    if n_eff == 0:
        ids, top = np.zeros((len(scores), 0), np.int64), np.zeros((len(scores), 0), np.float32)
    else:
        ids, top = top_k_rows(scores, n_eff)
    ids = np.where(np.isfinite(top), ids, -1)
    if n_eff < n:
        pad = n - n_eff
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, top


_BLOCK = 64  # items per block of the threshold pass


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values and their columns, largest first, ties by lower column
    (``0 < k <= columns``).

    A full ``argpartition`` of every row was three quarters of the two-stage nightly at 50k
    items. Instead, a per-row threshold that at least ``k`` values reach, and a sort of only
    the values at or above it: on wide rows the k-th largest maximum of the row's blocks of
    64 columns (only the blocks whose maximum reaches it are looked into), on narrow ones the
    k-th largest value itself (``np.partition``). Rows where too many values tie at the
    threshold, or with fewer than ``k`` finite values, take a full stable sort."""
    n_rows, n_cols = scores.shape
    ids = np.zeros((n_rows, k), dtype=np.int64)
    top = np.zeros((n_rows, k), dtype=np.float32)
    if not n_rows:
        return ids, top
    n_blocks = -(-n_cols // _BLOCK)
    if n_blocks >= 4 * k:
        maxima = np.maximum.reduceat(scores, np.arange(0, n_cols, _BLOCK), axis=1)
        threshold = np.partition(maxima, n_blocks - k, axis=1)[:, n_blocks - k]
        rows, blocks = np.nonzero(maxima >= threshold[:, None])
        cols = blocks[:, None] * _BLOCK + np.arange(_BLOCK)
        inside = cols < n_cols
        values = np.where(inside, scores[rows[:, None], np.minimum(cols, n_cols - 1)], -np.inf)
        hit = inside & (values >= threshold[rows][:, None])
        rows, cols = np.broadcast_to(rows[:, None], cols.shape)[hit], cols[hit]
        values = values[hit]
    else:
        threshold = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
        rows, cols = np.nonzero(scores >= threshold[:, None])
        values = scores[rows, cols]
    counts = np.bincount(rows, minlength=n_rows)
    heavy = (counts > max(16 * k, 4096)) | ~np.isfinite(threshold)
    keep = ~heavy[rows]
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, -values, rows))  # by row, then value down, then column
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    first = rank < k
    ids[rows[first], rank[first]] = cols[first]
    top[rows[first], rank[first]] = values[first]
    if heavy.any():  # rows of ties, or with too few finite values: a stable full sort
        sub = scores[heavy]
        order = np.argsort(-sub, axis=1, kind="stable")[:, :k]
        ids[heavy], top[heavy] = order, np.take_along_axis(sub, order, axis=1)
    return ids, top


def binary(user_items: csr_matrix, dtype: type = np.float32) -> csr_matrix:
    """Every interaction as 1, whatever its weight (the input of the binary models)."""
    return (user_items > 0).astype(dtype).tocsr()


_FILTERED = np.float32(-0.5 * np.finfo(np.float32).max)


def implicit_recommend(
    model: Any, user_rows: np.ndarray, user_items: csr_matrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` from an implicit matrix-factorisation model, in our padding convention."""
    n_eff = min(n, model.item_factors.shape[0])
    ids, scores = model.recommend(
        np.asarray(user_rows), user_items, N=n_eff, filter_already_liked_items=True
    )
    ids = np.atleast_2d(ids).astype(np.int64)
    scores = np.atleast_2d(scores).astype(np.float32)
    # implicit pads exhausted rows with filtered items scored -FLT_MAX, not -inf
    bad = ~np.isfinite(scores) | (scores <= _FILTERED) | (ids < 0)
    ids[bad], scores[bad] = -1, -np.inf
    if n_eff < n:
        ids = np.pad(ids, ((0, 0), (0, n - n_eff)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, n - n_eff)), constant_values=-np.inf)
    return ids, scores
