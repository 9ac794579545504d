"""Item-kNN: implicit's nearest-neighbour models (cosine, TF-IDF or BM25 item similarity,
``K`` neighbours per item); a user's scores sum the similarities of the items they have."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from implicit.nearest_neighbours import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    TFIDFRecommender,
)
from scipy.sparse import csr_matrix, load_npz, save_npz

from recommender.models.base import binary
from recommender.models.topn import top_n_excluding

WEIGHTINGS: dict[str, type[ItemItemRecommender]] = {
    "cosine": CosineRecommender,
    "tfidf": TFIDFRecommender,
    "bm25": BM25Recommender,
}


class ItemKNNModel:
    """Item-item collaborative filtering over binary interactions."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100, weighting: str = "bm25") -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, not {weighting!r}")
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self.neighbours = int(neighbours)
        self.weighting = weighting
        self.similarity = csr_matrix((0, 0), dtype=np.float32)

    def fit(self, user_items: csr_matrix) -> ItemKNNModel:
        knn = WEIGHTINGS[self.weighting](K=self.neighbours, num_threads=0)
        with warnings.catch_warnings():
            # implicit's own BM25/TF-IDF weighting hands itself a COO matrix and warns about it
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            knn.fit(binary(user_items), show_progress=False)
        self.similarity = csr_matrix(knn.similarity, dtype=np.float32)
        return self

    def recommend(
        self, user_rows: np.ndarray, user_items: csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = (binary(user_items) @ self.similarity).toarray()
        return top_n_excluding(scores, user_items, n)

    def params(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "weighting": self.weighting}

    def save(self, directory: Path) -> list[str]:
        save_npz(directory / "itemknn.npz", self.similarity, compressed=False)
        np.savez(
            directory / "itemknn_params.npz", neighbours=self.neighbours, weighting=self.weighting
        )
        return ["itemknn.npz", "itemknn_params.npz"]

    @classmethod
    def load(cls, directory: Path) -> ItemKNNModel:
        with np.load(directory / "itemknn_params.npz", allow_pickle=False) as data:
            model = cls(int(data["neighbours"]), str(data["weighting"]))
        model.similarity = load_npz(directory / "itemknn.npz").tocsr()
        return model
