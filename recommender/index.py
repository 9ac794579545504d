"""FAISS index built around a trained model's item vectors (the real-time retrieval path).

Inner product over ALS item factors ranks items exactly as the model's own score ``u . v``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np


class ItemIndex:
    """Exact inner-product search over item vectors, with per-query exclusions.

    Example: ``ItemIndex.build(item_factors).search(user_vecs, k=10, exclude=[{3}])``.
    """

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def build(cls, item_vectors: np.ndarray) -> ItemIndex:
        vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[set[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows and scores per query; excluded rows never appear (padded with -1)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ValueError(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        extra = max((len(e) for e in exclude), default=0) if exclude else 0
        fetch = min(k + extra, self.size)
        scores, rows = self.index.search(q, fetch)
        out_rows = np.full((len(q), k), -1, dtype=np.int64)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        for i in range(len(q)):
            keep = rows[i] >= 0
            if exclude and exclude[i]:
                keep &= ~np.isin(rows[i], np.fromiter(exclude[i], dtype=np.int64))
            kept_rows, kept_scores = rows[i][keep][:k], scores[i][keep][:k]
            out_rows[i, : len(kept_rows)] = kept_rows
            out_scores[i, : len(kept_scores)] = kept_scores
        return out_rows, out_scores

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> ItemIndex:
        return cls(faiss.read_index(str(path)))
