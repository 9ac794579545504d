"""Retrievers: the first stage. Each proposes its top unseen items for a block of users from
what is known about them at one time (their items, and the most recent of those), and can
score any (user, item) pair another retriever proposed; the candidate set
(:mod:`recommender.ranking.candidates`) is the union of the proposals. Pure.

One contract, :class:`Retriever`: ``retrieve(history, depth) -> Retrieved`` (each user's top
``depth`` item rows, and ``at(user_pos, item_rows)`` for any pair, ``-inf`` where a retriever
has nothing to say). No retriever needs a dense users x items block unless its model is dense:

* :class:`ALSRetriever` - the ALS user vector (the trained one, fold-in for users the model has
  not seen or whose history changed) against the item factors, top items by implicit's
  ``topk`` (the exact inner product the FAISS index approximates);
* :class:`EASERetriever` - EASE's item-item weights where the catalog allows it (dense), else
  :class:`SimilarityRetriever` over item-kNN similarities (sparse: only items a neighbour
  list reaches are proposed; a pair no neighbour list reaches scores 0);
* :class:`SimilarityRetriever` on the *recent* matrix - "more like the user's recent items";
* :class:`ItemScoreRetriever` - the same score for everyone: popularity or 30-day trending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recommender.data.vocab import Vocab
from recommender.models import ALSModel, EASEModel
from recommender.models.base import binary
from recommender.models.csr_arrays import entry_keys, row_entries
from recommender.models.topn import factor_top_n, keyed_top_n, sparse_top_n, top_n_excluding


@dataclass(frozen=True)
class History:
    """What is known about a block of users at one time.

    ``user_rows``: rows in the ALS model (-1: unknown to it); ``matrix``: users x items, every
    item they have; ``recent``: the same shape, weights ``decay**k`` on the k-th most recent
    item (k = 0 newest) for the last few items; ``refold``: fold in instead of using the
    trained vector (the history changed since training), for the whole block or per user.
    """

    user_rows: np.ndarray
    matrix: csr_matrix
    recent: csr_matrix
    refold: bool | np.ndarray = False

    @cached_property
    def binary(self) -> csr_matrix:
        """``matrix`` with every item as 1 (computed once per block, several retrievers and
        the genre shares read it)."""
        return binary(self.matrix)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def block(self, start: int, stop: int) -> History:
        rows = slice(start, stop)
        refold = self.refold[rows] if isinstance(self.refold, np.ndarray) else self.refold
        return History(self.user_rows[rows], self.matrix[rows], self.recent[rows], refold)


class Retrieved(Protocol):
    """One retriever's answer for a history block."""

    @property
    def ids(self) -> np.ndarray:
        """(users, depth) item rows, best first, -1 padded."""
        ...

    def at(self, user_pos: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """float32 scores of (user position, item row) pairs, ``-inf``: nothing to say."""
        ...


class Retriever(Protocol):
    """Proposes items for every user of a history block."""

    name: str

    def retrieve(self, history: History, depth: int) -> Retrieved: ...


@dataclass(frozen=True)
class DenseRetrieved:
    """The top items of a dense (users, items) score block, and the block."""

    ids: np.ndarray
    block: np.ndarray

    @classmethod
    def of(cls, block: np.ndarray, seen: csr_matrix, depth: int) -> DenseRetrieved:
        return cls(top_n_excluding(block, seen, depth)[0], block)

    def at(self, user_pos: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.block[user_pos, item_rows], dtype=np.float32)


@dataclass(frozen=True)
class FactorRetrieved:
    """The top items of user vectors against item factors; any pair is one dot product."""

    ids: np.ndarray
    vectors: np.ndarray
    item_factors: np.ndarray

    def at(self, user_pos: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        # one matrix-vector product per user over their pairs: 8x faster than gathering a
        # user vector per pair and multiplying (200k pairs x 128 factors: 40 ms vs 310 ms)
        user_pos, item_rows = np.asarray(user_pos), np.asarray(item_rows)
        out = np.empty(len(user_pos), dtype=np.float32)
        order = np.argsort(user_pos, kind="stable")
        users, items = user_pos[order], item_rows[order]
        bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True]) if len(users) else ()
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            out[order[start:stop]] = (
                self.item_factors[items[start:stop]] @ self.vectors[users[start]]
            )
        return out


@dataclass(frozen=True)
class SparseRetrieved:
    """The top stored entries of a sparse (users, items) block; pairs not stored score 0.
    The block is kept as its entries: ``keys`` (``user_pos * n_items + item row``,
    ascending, distinct) and their ``values``."""

    ids: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    n_items: int

    @classmethod
    def of_block(cls, ids: np.ndarray, block: csr_matrix) -> SparseRetrieved:
        """From a canonical (sorted, no duplicates) CSR block."""
        keys = entry_keys(block.indptr, block.indices, block.shape[1])
        return cls(ids, keys, block.data, block.shape[1])

    def at(self, user_pos: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        keys = self.keys
        wanted = np.asarray(user_pos, np.int64) * self.n_items + np.asarray(item_rows, np.int64)
        if not len(keys):
            return np.zeros(len(wanted), dtype=np.float32)
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[pos] == wanted, self.values[pos], 0).astype(np.float32)


# A source block whose product reaches at most this many similarity entries (a request's
# history: a few items times ~100 neighbours) is multiplied in numpy from the CSR arrays:
# scipy's sparse product and its constructors cost more than the arithmetic there (a
# fifth of a cold two-stage request). Bigger blocks (the nightly's) take scipy's product.
SMALL_PRODUCT = 50_000


def small_product(
    source: csr_matrix, similarity: csr_matrix, ones: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """``source @ similarity`` (``ones``: every positive entry of ``source`` as 1, as
    :func:`~recommender.models.base.binary` gives) as sorted distinct keys (``row *
    n_items + column``) and float32 sums, zero sums dropped as scipy's product drops them;
    None when it would reach more than :data:`SMALL_PRODUCT` entries. The sums add in the
    order scipy's product adds them (source columns ascending), so the values are equal."""
    if not source.has_canonical_format:
        return None
    positive = source.data > 0 if ones else np.ones(source.nnz, dtype=bool)
    rows = np.repeat(np.arange(source.shape[0], dtype=np.int64), np.diff(source.indptr))
    rows, cols = rows[positive], source.indices[positive].astype(np.int64)
    weights = np.ones(len(cols), np.float32) if ones else source.data[positive]
    total = int((similarity.indptr[cols + 1] - similarity.indptr[cols]).sum())
    if total > SMALL_PRODUCT:
        return None
    if not total:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    owner, entry = row_entries(similarity.indptr, cols)
    keys = rows[owner] * similarity.shape[1] + similarity.indices[entry]
    values = (similarity.data[entry] * weights[owner]).astype(np.float32)
    order = np.argsort(keys, kind="stable")  # per key, the source columns stay ascending
    keys, values = keys[order], values[order]
    new = np.r_[True, keys[1:] != keys[:-1]]
    sums = np.zeros(int(new.sum()), dtype=np.float32)
    np.add.at(sums, np.cumsum(new) - 1, values)  # one by one in order, in float32, as scipy
    nonzero = sums != 0
    return keys[new][nonzero], sums[nonzero]


@dataclass(frozen=True)
class GlobalRetrieved:
    """Everyone's scores are the same per item."""

    ids: np.ndarray
    item_scores: np.ndarray

    def at(self, user_pos: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        return self.item_scores[item_rows]


class NeighbourIndex(Protocol):
    """An inner-product index over the ALS item factors (the bundle's FAISS index)."""

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[set[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


class ALSRetriever:
    """User vector . item factors. The top items come from ``index`` when given (the bundle's
    FAISS index: what a request uses, a graph search instead of a pass over every item), else
    exactly by implicit's ``topk`` on ``num_threads`` (1: the calling thread; 0: every core,
    for the nightly). Scores of any pair (``at``) are exact dot products either way."""

    name = "als"

    def __init__(
        self, als: ALSModel, num_threads: int = 1, index: NeighbourIndex | None = None
    ) -> None:
        self.als = als
        self.item_factors = np.ascontiguousarray(als.item_factors, dtype=np.float32)
        self.num_threads = num_threads
        self.index = index

    def vectors(self, history: History) -> np.ndarray:
        rows = history.user_rows
        out = np.zeros((len(rows), self.item_factors.shape[1]), dtype=np.float32)
        trained = (rows >= 0) & ~np.asarray(history.refold, dtype=bool)
        if trained.any():
            out[trained] = self.als.user_factors[rows[trained]]
        fold = ~trained & (np.diff(history.matrix.indptr) > 0)
        if fold.all():  # a request's one user, or a block of new users
            out[:] = self.als.fold_in(history.matrix)
        elif fold.any():
            out[fold] = self.als.fold_in(history.matrix[np.flatnonzero(fold)])
        return out

    def retrieve(self, history: History, depth: int) -> FactorRetrieved:
        vectors = self.vectors(history)
        if self.index is not None:
            seen = history.matrix
            exclude = [
                set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
                for u in range(len(history))
            ]
            ids, _ = self.index.search(vectors, depth, exclude)
        else:
            ids, _ = factor_top_n(
                vectors, self.item_factors, history.matrix, depth, num_threads=self.num_threads
            )
        return FactorRetrieved(ids.astype(np.int64), vectors, self.item_factors)


class EASERetriever:
    """EASE scores from the user's whole history (a dense model: a dense block)."""

    name = "ease"

    def __init__(self, ease: EASEModel) -> None:
        self.ease = ease

    def retrieve(self, history: History, depth: int) -> DenseRetrieved:
        block = np.asarray(self.ease.scores(history.matrix), dtype=np.float32)
        return DenseRetrieved.of(block, history.matrix, depth)


class SimilarityRetriever:
    """History (or recent items, ``use_recent``) times an items x items similarity, kept
    sparse: the items the source items' neighbour lists reach."""

    def __init__(self, name: str, similarity: csr_matrix, use_recent: bool = False) -> None:
        self.name = name
        self.similarity = csr_matrix(similarity, dtype=np.float32)
        self.use_recent = use_recent

    def retrieve(self, history: History, depth: int) -> SparseRetrieved:
        n_users, n_items = history.matrix.shape
        source = history.recent if self.use_recent else history.matrix
        small = small_product(source, self.similarity, ones=not self.use_recent)
        if small is not None:  # a request: numpy on the CSR arrays
            keys, values = small
            seen = history.matrix
            seen_keys = np.unique(entry_keys(seen.indptr, seen.indices, n_items))
            ids, _ = keyed_top_n(keys, values, n_users, n_items, depth, seen_keys)
            return SparseRetrieved(ids, keys, values, n_items)
        source = history.recent if self.use_recent else history.binary
        block = source @ self.similarity  # float32 CSR (both are)
        block.sum_duplicates()
        ids, _ = sparse_top_n(block, history.matrix, depth)
        return SparseRetrieved.of_block(ids, block)


class ItemScoreRetriever:
    """One score per item for everyone (popularity, trending)."""

    def __init__(self, name: str, item_scores: np.ndarray) -> None:
        self.name = name
        self.item_scores = np.asarray(item_scores, dtype=np.float32)
        finite = np.isfinite(self.item_scores)
        order = np.argsort(-self.item_scores, kind="stable")  # ties: the lower item row
        self.order = order[finite[order]]
        # each item's position in ``order`` (past its end for an item left out)
        self.place = np.full(len(self.item_scores), len(self.item_scores), dtype=np.int64)
        self.place[self.order] = np.arange(len(self.order))

    def retrieve(self, history: History, depth: int) -> GlobalRetrieved:
        return GlobalRetrieved(self.top(history.matrix, depth), self.item_scores)

    def top(self, seen: csr_matrix, depth: int) -> np.ndarray:
        """Each user's top ``depth`` unseen items (rows -1 padded), what
        :func:`~recommender.models.topn.top_n_excluding` gives on the broadcast scores, from
        the one global order: only its first ``depth`` + (most items a user has seen) are
        looked at."""
        n_users = seen.shape[0]
        counts = np.diff(seen.indptr)
        head = self.order[: depth + (int(counts.max()) if n_users else 0)]
        # each seen item's place in the head of the order (no sparse column slicing: a
        # request's block is one row, and scipy's indexing costs more than the lookup)
        place = self.place[seen.indices]
        rows = np.repeat(np.arange(n_users), counts)
        hit = (place < len(head)) & (seen.data != 0)
        taken = np.zeros((n_users, len(head)), dtype=bool)
        taken[rows[hit], place[hit]] = True
        free = ~taken
        rank = np.cumsum(free, axis=1)
        pick = free & (rank <= depth)
        ids = np.full((n_users, depth), -1, dtype=np.int64)
        users, pos = np.nonzero(pick)
        ids[users, rank[users, pos] - 1] = head[pos]
        return ids


def recent_matrix(
    interactions: pd.DataFrame,
    users: Sequence[str],
    items: Vocab,
    last_n: int = 10,
    decay: float = 0.8,
) -> csr_matrix:
    """Users x items with ``decay**k`` on each user's k-th most recent item (k < ``last_n``).

    Example: a user whose items were x then y (y newest) gets y: 1.0, x: 0.8.
    """
    index = pd.Index(list(users))
    df = interactions[interactions["user_id"].isin(index)]
    df = df.sort_values(["user_id", "event_timestamp"], ascending=[True, False], kind="stable")
    df = df.drop_duplicates(["user_id", "item_id"])
    k = df.groupby("user_id").cumcount().to_numpy()
    keep = k < last_n
    rows = index.get_indexer(df["user_id"])[keep]
    cols = items.rows(df["item_id"])[keep]
    ok = cols >= 0
    weights = (decay ** k[keep][ok]).astype(np.float32)
    return csr_matrix((weights, (rows[ok], cols[ok])), shape=(len(index), len(items)))


def trending_scores(
    interactions: pd.DataFrame, items: Vocab, as_of: pd.Timestamp, days: int = 30
) -> np.ndarray:
    """Interactions per item in the ``days`` before ``as_of`` (``item_stats``' 30-day count)."""
    ts = interactions["event_timestamp"]
    recent = interactions[(ts < as_of) & (ts >= as_of - pd.Timedelta(days=days))]
    rows = items.rows(recent["item_id"])
    return np.bincount(rows[rows >= 0], minlength=len(items)).astype(np.float32)


def recent_from_lists(
    lists: Sequence[Sequence[str]], items: Vocab, last_n: int = 10, decay: float = 0.8
) -> csr_matrix:
    """:func:`recent_matrix` from recent-item lists (newest first, as ``user_recent_items``
    holds them): one row per list. Unknown items are skipped."""
    lengths = np.fromiter((len(ids) for ids in lists), dtype=np.int64, count=len(lists))
    flat = [str(i) for ids in lists for i in ids]
    rows = np.arange(len(lists))
    return recent_from_flat(
        lengths, items.rows(flat), rows, (len(lists), len(items)), last_n, decay
    )


def recent_from_flat(
    lengths: np.ndarray,
    item_rows: np.ndarray,
    list_rows: np.ndarray,
    shape: tuple[int, int],
    last_n: int = 10,
    decay: float = 0.8,
) -> csr_matrix:
    """:func:`recent_from_lists` from arrays: the lists laid end to end (``item_rows``, -1 for
    an unknown item; list ``j`` is the next ``lengths[j]`` entries, newest first), list ``j``
    going to row ``list_rows[j]`` of a ``shape`` matrix (-1: dropped; no row twice). Each
    list keeps its first ``last_n`` distinct known items, the k-th weighted ``decay**k``."""
    n_items = shape[1]
    owner = np.repeat(np.arange(len(lengths)), lengths)
    known = item_rows >= 0
    owner, cols = owner[known], item_rows[known].astype(np.int64)
    _, first = np.unique(owner * n_items + cols, return_index=True)  # first of each repeat
    first.sort()
    owner, cols = owner[first], cols[first]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    k = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    rows = np.asarray(list_rows)[owner]
    keep = (k < last_n) & (rows >= 0)
    rows, cols, k = rows[keep], cols[keep], k[keep]
    order = np.lexsort((cols, rows))  # CSR arrays directly (canonical: no COO pass)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    weights = (decay ** k[order]).astype(np.float32)
    return csr_matrix((weights, cols[order], indptr), shape=shape)
