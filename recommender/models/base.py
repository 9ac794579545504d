"""The model contract every recommender implements and the implicit-library adapter (top-N
helpers: :mod:`recommender.models.topn`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.sparse import csr_matrix

from recommender.models.topn import FILTERED


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


def binary(user_items: csr_matrix, dtype: type = np.float32) -> csr_matrix:
    """Every interaction as 1, whatever its weight (the input of the binary models)."""
    if (
        isinstance(user_items, csr_matrix)
        and user_items.has_canonical_format
        and bool((user_items.data > 0).all())
    ):  # the usual case, without scipy's comparison machinery (a request's rows pay for it)
        return csr_matrix(
            (
                np.ones(user_items.nnz, dtype=dtype),
                user_items.indices.copy(),
                user_items.indptr.copy(),
            ),
            shape=user_items.shape,
        )
    return (user_items > 0).astype(dtype).tocsr()


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
    bad = ~np.isfinite(scores) | (scores <= FILTERED) | (ids < 0)
    ids[bad], scores[bad] = -1, -np.inf
    if n_eff < n:
        ids = np.pad(ids, ((0, 0), (0, n - n_eff)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, n - n_eff)), constant_values=-np.inf)
    return ids, scores
