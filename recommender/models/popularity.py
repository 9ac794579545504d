"""Most-popular baseline: the same list for everyone, minus what they have seen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix


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
        """The ``n`` most popular items each user has not seen, ties by item row.

        Only the first ``n + (most items any of these users has seen)`` of the ranking can
        make a list, so this masks that head instead of scoring every item for every user
        (the dense way was a quarter of `reco train`'s time, in the hold-out)."""
        n_users = len(user_rows)
        if user_items.shape[0] != n_users:
            raise ValueError(f"user_items has {user_items.shape[0]} rows for {n_users} users")
        most_seen = int(np.diff(user_items.indptr).max(initial=0))
        m = min(len(self.ranking), n + most_seen)
        rank_of = np.empty(len(self.ranking), dtype=np.int64)
        rank_of[self.ranking] = np.arange(len(self.ranking))
        seen = user_items.tocoo()
        ranks = rank_of[seen.col]
        head = ranks < m
        blocked = np.zeros((n_users, m), dtype=bool)
        blocked[seen.row[head], ranks[head]] = True
        order = np.argsort(blocked, axis=1, kind="stable")[:, :n]  # unseen first, by rank
        valid = ~np.take_along_axis(blocked, order, axis=1)
        rows = self.ranking[:m][order]
        ids = np.where(valid, rows, -1).astype(np.int64)
        scores = np.where(valid, self.item_scores[rows], -np.inf).astype(np.float32)
        if ids.shape[1] < n:
            pad = ((0, 0), (0, n - ids.shape[1]))
            ids = np.pad(ids, pad, constant_values=-1)
            scores = np.pad(scores, pad, constant_values=-np.inf)
        return ids, scores

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
