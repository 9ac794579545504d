"""Most-popular baseline: the same list for everyone, minus what they have seen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from recommender.models.base import top_n_excluding


class PopularityModel:
    """Scores each item by how many users interacted with it."""

    name = "popularity"

    def __init__(self) -> None:
        self._set_scores(np.zeros(0, dtype=np.float32))

    def _set_scores(self, scores: np.ndarray) -> None:
        self.item_scores = scores
        # item rows, most popular first (ties by row): computed once, served many times
        self.ranking = np.argsort(-scores, kind="stable")

    def fit(self, user_items: csr_matrix) -> PopularityModel:
        self._set_scores(np.asarray((user_items > 0).sum(axis=0), dtype=np.float32).ravel())
        return self

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        block = np.broadcast_to(self.item_scores, (len(user_rows), len(self.item_scores)))
        return top_n_excluding(block, user_items, n)

    def params(self) -> dict[str, Any]:
        return {}

    def save(self, directory: Path) -> list[str]:
        np.savez(directory / "popularity.npz", item_scores=self.item_scores)
        return ["popularity.npz"]

    @classmethod
    def load(cls, directory: Path) -> PopularityModel:
        model = cls()
        with np.load(directory / "popularity.npz", allow_pickle=False) as data:
            model._set_scores(data["item_scores"])
        return model

    def __repr__(self) -> str:
        return f"PopularityModel(items={len(self.item_scores)}) {json.dumps(self.params())}"
