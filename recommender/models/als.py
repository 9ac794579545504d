"""Implicit-feedback ALS (benfred/implicit), with fold-in for users it has never seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

_FILTERED = np.float32(-0.5 * np.finfo(np.float32).max)


class ALSModel:
    """Weighted matrix factorisation (Hu, Koren, Volinsky 2008) via implicit's CPU solver."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 5.0,
        alpha: float = 1.0,
        iterations: int = 20,
        random_state: int = 42,
        num_threads: int = 0,
    ) -> None:
        # implicit warns at construction when BLAS is multi-threaded; we limit it while fitting.
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                iterations=iterations,
                random_state=random_state,
                num_threads=num_threads,
                calculate_training_loss=False,
            )
        self._random_state: int | None = random_state

    @property
    def item_factors(self) -> np.ndarray:
        return np.asarray(self.model.item_factors, dtype=np.float32)

    @property
    def user_factors(self) -> np.ndarray:
        return np.asarray(self.model.user_factors, dtype=np.float32)

    def fit(self, user_items: csr_matrix) -> ALSModel:
        # implicit runs its own threads; a multi-threaded BLAS underneath only oversubscribes.
        with threadpool_limits(1, "blas"):
            self.model.fit(user_items, show_progress=False)
        return self

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n_eff = min(n, self.model.item_factors.shape[0])
        ids, scores = self.model.recommend(
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

    def fold_in(self, user_items: csr_matrix) -> np.ndarray:
        """User vectors for rows of unseen users, solved against the fixed item factors."""
        rows = np.arange(user_items.shape[0])
        return np.asarray(self.model.recalculate_user(rows, user_items), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        m = self.model
        return {
            "factors": m.factors,
            "regularization": m.regularization,
            "alpha": m.alpha,
            "iterations": m.iterations,
            "random_state": self._random_state,
        }

    def save(self, directory: Path) -> list[str]:
        self.model.save(str(directory / "als.npz"))
        return ["als.npz"]

    @classmethod
    def load(cls, directory: Path) -> ALSModel:
        path = directory / "als.npz"
        with threadpool_limits(1, "blas"):
            loaded = AlternatingLeastSquares.load(str(path))
        obj = cls.__new__(cls)
        obj.model = loaded
        obj._random_state = getattr(loaded, "random_state", None)
        return obj
