"""Implicit-feedback ALS (benfred/implicit), with fold-in for users it has never seen."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from recommender.models.base import binary, implicit_recommend

WEIGHTINGS = ("binary", "rating")

_SOLVE_LOCK = threading.Lock()  # num_threads is swapped for one call at a time


class ALSModel:
    """Weighted matrix factorisation (Hu, Koren, Volinsky 2008) via implicit's CPU solver.

    implicit uses ``alpha * weight`` as an observed pair's confidence (unobserved pairs: 1).
    ``weighting="binary"`` sets every weight to 1; ``"rating"`` keeps the matrix's weights
    (ratings). Binary won the validation search
    on MovieLens (see docs/evaluation.md), where any rating means the user watched the film.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 5.0,
        alpha: float = 1.0,
        iterations: int = 20,
        random_state: int = 42,
        num_threads: int = 0,
        weighting: str = "binary",
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
        self.weighting = weighting
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
            self.model.fit(self._confidence(user_items), show_progress=False)
        return self

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return implicit_recommend(self.model, user_rows, user_items, n)

    def fold_in(self, user_items: csr_matrix) -> np.ndarray:
        """User vectors for rows of unseen users, solved against the fixed item factors."""
        rows = np.arange(user_items.shape[0])
        confidence = self._confidence(user_items)
        # One small solve per request: an OpenMP team of every core (num_threads=0) would wait
        # for cores another process holds; solve on the calling thread instead.
        with _SOLVE_LOCK:
            threads, self.model.num_threads = self.model.num_threads, 1
            try:
                vectors = self.model.recalculate_user(rows, confidence)
            finally:
                self.model.num_threads = threads
        return np.asarray(vectors, dtype=np.float32)

    def _confidence(self, user_items: csr_matrix) -> csr_matrix:
        if self.weighting == "binary":
            return binary(user_items)
        return user_items

    def params(self) -> dict[str, Any]:
        m = self.model
        return {
            "factors": m.factors,
            "regularization": m.regularization,
            "alpha": m.alpha,
            "iterations": m.iterations,
            "random_state": self._random_state,
            "weighting": self.weighting,
        }

    def save(self, directory: Path) -> list[str]:
        self.model.save(str(directory / "als.npz"))
        np.savez(directory / "als_params.npz", weighting=self.weighting)
        return ["als.npz", "als_params.npz"]

    @classmethod
    def load(cls, directory: Path) -> ALSModel:
        path = directory / "als.npz"
        with threadpool_limits(1, "blas"):
            loaded = AlternatingLeastSquares.load(str(path))
        obj = cls.__new__(cls)
        obj.model = loaded
        obj._random_state = getattr(loaded, "random_state", None)
        obj.weighting = "rating"  # artifacts written before the weighting option existed
        params = directory / "als_params.npz"
        if params.exists():
            with np.load(params, allow_pickle=False) as data:
                obj.weighting = str(data["weighting"])
        return obj
