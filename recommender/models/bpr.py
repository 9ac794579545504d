"""Bayesian Personalised Ranking (Rendle et al. 2009) via implicit's CPU solver: pairwise
SGD on binary interactions with uniformly sampled negatives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from scipy.sparse import csr_matrix

from recommender.models.base import binary, implicit_recommend


class BPRModel:
    """Matrix factorisation trained for ranking, not reconstruction."""

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 300,
        random_state: int = 42,
    ) -> None:
        self.model = BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            random_state=random_state,
        )
        self._random_state: int | None = random_state

    def fit(self, user_items: csr_matrix) -> BPRModel:
        self.model.fit(binary(user_items), show_progress=False)
        return self

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return implicit_recommend(self.model, user_rows, user_items, n)

    def params(self) -> dict[str, Any]:
        m = self.model
        return {
            "factors": m.factors,
            "learning_rate": m.learning_rate,
            "regularization": m.regularization,
            "iterations": m.iterations,
            "random_state": self._random_state,
        }

    def save(self, directory: Path) -> list[str]:
        self.model.save(str(directory / "bpr.npz"))
        return ["bpr.npz"]

    @classmethod
    def load(cls, directory: Path) -> BPRModel:
        obj = cls.__new__(cls)
        obj.model = BayesianPersonalizedRanking.load(str(directory / "bpr.npz"))
        obj._random_state = getattr(obj.model, "random_state", None)
        return obj
