"""Candidate sets: the union of every retriever's top items per user, with each retriever's
score and rank for every candidate (the ranker's first features) and which retrievers
proposed it (provenance). Pure.

Every retriever scores every candidate, proposed by it or not (a retriever's opinion of an
item another retriever found is a feature too); ranks are only defined for the items a
retriever proposed (``NaN`` otherwise, which LightGBM treats as missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.ranking.retrievers import History, Retriever


@dataclass
class CandidateSet:
    """Candidates of a block of users, one row per (user, item) pair, grouped by user.

    ``user_pos``: the user's position in the history block; ``item_rows``: catalog rows;
    ``scores``/``ranks``: (pairs, retrievers), rank 1 = a retriever's best item.
    """

    retrievers: tuple[str, ...]
    user_pos: np.ndarray
    item_rows: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray

    def __len__(self) -> int:
        return len(self.item_rows)

    @property
    def proposed(self) -> np.ndarray:
        """(pairs, retrievers) bool: which retrievers proposed each pair."""
        return ~np.isnan(self.ranks)

    def provenance(self, pair: int) -> list[str]:
        """The retrievers that proposed one pair, best rank first."""
        ranks = self.ranks[pair]
        order = np.argsort(np.where(np.isnan(ranks), np.inf, ranks), kind="stable")
        return [self.retrievers[j] for j in order if not np.isnan(ranks[j])]

    def provenances(self, pairs: np.ndarray) -> list[list[str]]:
        """:meth:`provenance` of several pairs (one sort for all of them)."""
        ranks = self.ranks[np.asarray(pairs, dtype=np.int64)]
        order = np.argsort(np.where(np.isnan(ranks), np.inf, ranks), axis=1, kind="stable")
        proposed = np.take_along_axis(~np.isnan(ranks), order, axis=1)
        return [
            [self.retrievers[j] for j, ok in zip(row, hit, strict=True) if ok]
            for row, hit in zip(order.tolist(), proposed.tolist(), strict=True)
        ]

    def group_sizes(self) -> np.ndarray:
        """Pairs per user position, in order (LightGBM's query groups)."""
        return np.diff(np.flatnonzero(np.r_[True, np.diff(self.user_pos) != 0, True]))

    def take(self, mask: np.ndarray) -> CandidateSet:
        return CandidateSet(
            self.retrievers,
            self.user_pos[mask],
            self.item_rows[mask],
            self.scores[mask],
            self.ranks[mask],
        )


def _block(retrievers: Sequence[Retriever], history: History, depth: int) -> CandidateSet:
    n_users, n_items = history.matrix.shape
    answers = [retriever.retrieve(history, depth) for retriever in retrievers]
    proposals = []  # per retriever: sorted (user * n_items + item) keys and their ranks
    for answer in answers:
        ids = answer.ids
        ok = ids >= 0
        keys = (np.arange(n_users)[:, None] * n_items + ids)[ok]
        rank = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.float32), ids.shape)[ok]
        order = np.argsort(keys, kind="stable")
        proposals.append((keys[order], rank[order]))
    # the union, sorted: grouped by user, items ascending
    union = np.sort(np.concatenate([keys for keys, _ in proposals]))
    # sorted, then unique (numpy 2.4's np.unique hashes int64 keys: 50x slower here)
    union = union[np.r_[True, union[1:] != union[:-1]]] if len(union) else union
    u, i = union // n_items, union % n_items
    scores = np.stack([answer.at(u, i) for answer in answers], axis=1).astype(np.float32)
    scores[~np.isfinite(scores)] = np.nan
    ranks = np.full((len(union), len(retrievers)), np.nan, dtype=np.float32)
    for j, (keys, rank) in enumerate(proposals):
        ranks[np.searchsorted(union, keys), j] = rank
    names = tuple(r.name for r in retrievers)
    return CandidateSet(names, u.astype(np.int64), i.astype(np.int64), scores, ranks)


def candidates(
    retrievers: Sequence[Retriever], history: History, depth: int = 100, block_users: int = 512
) -> CandidateSet:
    """Each retriever's top ``depth`` unseen items per user, as one candidate set.

    Example: two retrievers proposing {a, b} and {b, c} give candidates a, b, c, with b
    proposed by both.
    """
    if not retrievers:
        raise ValueError("at least one retriever is needed")
    if depth < 1:
        raise ValueError("depth must be at least 1")
    if not len(history):
        n = len(retrievers)
        empty = np.zeros((0, n), dtype=np.float32)
        names = tuple(r.name for r in retrievers)
        return CandidateSet(names, np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty)
    if len(history) <= block_users:  # one block (a request): no slicing
        return _block(retrievers, history, depth)
    parts = []
    for start in range(0, len(history), block_users):
        part = _block(retrievers, history.block(start, start + block_users), depth)
        part.user_pos += start
        parts.append(part)
    return CandidateSet(
        parts[0].retrievers,
        np.concatenate([p.user_pos for p in parts]),
        np.concatenate([p.item_rows for p in parts]),
        np.concatenate([p.scores for p in parts]),
        np.concatenate([p.ranks for p in parts]),
    )
