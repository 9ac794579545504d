"""EASE^R (Steck 2019): a closed-form item-item linear model, strong on small catalogs.

``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1`` and a zero diagonal; a user's scores
are ``x_u B``. Fitting inverts an items x items matrix, so memory grows with items squared
(50k items would need 10 GB): :data:`MAX_ITEMS` guards against that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from recommender.models.base import binary
from recommender.models.topn import top_n_excluding

MAX_ITEMS = 20_000  # 20k x 20k float64 = 3.2 GB while inverting


class EASEModel:
    """Binary-input EASE with L2 strength ``regularization`` (lambda)."""

    name = "ease"

    def __init__(self, regularization: float = 400.0) -> None:
        if regularization <= 0:
            raise ValueError("EASE regularization must be positive")
        self.regularization = float(regularization)
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def fit(self, user_items: csr_matrix) -> EASEModel:
        n_items = user_items.shape[1]
        if n_items > MAX_ITEMS:
            raise ValueError(
                f"EASE needs an items x items matrix; {n_items} items exceed {MAX_ITEMS}"
            )
        x = binary(user_items, np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n_items)] += self.regularization
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.weights = b.astype(np.float32)
        return self

    def scores(self, user_items: csr_matrix) -> np.ndarray:
        """Dense scores for each row of ``user_items`` (history -> every item)."""
        return np.asarray(binary(user_items) @ self.weights)

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_n_excluding(self.scores(user_items), user_items, n)

    def params(self) -> dict[str, Any]:
        return {"regularization": self.regularization}

    def save(self, directory: Path) -> list[str]:
        np.savez(directory / "ease.npz", weights=self.weights, regularization=self.regularization)
        return ["ease.npz"]

    @classmethod
    def load(cls, directory: Path) -> EASEModel:
        with np.load(directory / "ease.npz", allow_pickle=False) as data:
            model = cls(float(data["regularization"]))
            model.weights = data["weights"]
        return model
