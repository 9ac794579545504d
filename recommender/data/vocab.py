"""Id vocabularies (external id <-> matrix row) and the user x item CSR matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix


@dataclass(frozen=True)
class Vocab:
    """An ordered set of external ids; row ``i`` of a factor matrix belongs to ``ids[i]``.

    Example: ``Vocab.from_ids(["b", "a"]).rows(["a", "zz"])`` is ``array([1, -1])``.
    """

    ids: np.ndarray
    _index: dict[str, int] = field(repr=False, compare=False)

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> Vocab:
        arr = np.asarray(list(ids), dtype=str)
        index = {v: i for i, v in enumerate(arr.tolist())}
        if len(index) != len(arr):
            raise ValueError("vocabulary ids must be unique")
        return cls(arr, index)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def row(self, external_id: str) -> int | None:
        return self._index.get(external_id)

    def rows(self, external_ids: Iterable[str]) -> np.ndarray:
        """Rows for ids; unknown ids map to -1. A long column (a Series or array of more than
        a few hundred ids, usually far fewer distinct ones) is factorized first, so each
        distinct id is looked up once (half the time of a lookup per value)."""
        if isinstance(external_ids, pd.Series | pd.Index | np.ndarray) and len(external_ids) > 256:
            codes, uniques = pd.factorize(np.asarray(external_ids))
            found = self.rows(list(uniques))
            return np.where(codes >= 0, found[codes], -1).astype(np.int64)
        get = self._index.get
        return np.fromiter((get(str(i), -1) for i in external_ids), dtype=np.int64)


def confidence(ratings: np.ndarray) -> np.ndarray:
    """Interaction weight for implicit models: every interaction counts, higher ratings more.

    MovieLens ratings are 1..5; a 1-star rating is still a signal of interest (the user chose
    to watch), so the weight is ``rating`` itself and never zero; missing ratings weigh 1.
    """
    weights = np.nan_to_num(np.asarray(ratings, dtype=np.float32), nan=1.0)
    return np.maximum(weights, 1e-3)


def user_item_matrix(interactions: pd.DataFrame, users: Vocab, items: Vocab) -> csr_matrix:
    """Users x items CSR of confidence weights; duplicate pairs keep their largest weight.

    Interactions whose user or item is not in the vocabularies are dropped.
    """
    u = users.rows(interactions["user_id"])
    i = items.rows(interactions["item_id"])
    keep = (u >= 0) & (i >= 0)
    w = confidence(interactions["rating"].to_numpy())[keep]
    frame = pd.DataFrame({"u": u[keep], "i": i[keep], "w": w}).groupby(["u", "i"])["w"].max()
    rows = frame.index.get_level_values(0).to_numpy()
    cols = frame.index.get_level_values(1).to_numpy()
    return csr_matrix(
        (frame.to_numpy(dtype=np.float32), (rows, cols)), shape=(len(users), len(items))
    )


def items_row(item_rows: np.ndarray, n_items: int, weight: float = 4.0) -> csr_matrix:
    """A one-user CSR row for fold-in from a handful of known items (weight ~ a good rating)."""
    cols = np.unique(item_rows[item_rows >= 0])
    return one_row(cols, np.full(len(cols), weight, dtype=np.float32), n_items)


def one_row(cols: np.ndarray, data: np.ndarray, n_items: int) -> csr_matrix:
    """A one-user CSR row from sorted, distinct columns and their values (built from the CSR
    arrays: one constructor, no COO pass; a request builds a few of these)."""
    indptr = np.array([0, len(cols)], dtype=np.int32)
    return csr_matrix((data, np.asarray(cols, dtype=np.int32), indptr), shape=(1, n_items))
