"""The two stages end to end, without I/O: fit the retrievers on what was known at a time,
build candidate sets and their point-in-time features, make training rows over several
cut-offs (labels: the window after each), and rank a block of users.

The feature reader is the only door to features (:mod:`recommender.ranking.dataset`): Feast's
offline store for training, in-memory tables for offline evaluation, the online values for
serving (:func:`recommender.ranking.onlinerows.online_matrix`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recommender.data.vocab import Vocab, user_item_matrix
from recommender.errors import InvalidDataset
from recommender.models import ALSModel, EASEModel, ItemKNNModel
from recommender.models.configs import als_config
from recommender.models.ease import MAX_ITEMS
from recommender.ranking.candidates import CandidateSet, candidates
from recommender.ranking.dataset import FeatureReader, entity_rows, labels
from recommender.ranking.features import (
    Genres,
    feature_matrix,
    retriever_columns,
    user_genre_shares,
)
from recommender.ranking.ranker import Ranker
from recommender.ranking.retrievers import (
    ALSRetriever,
    EASERetriever,
    History,
    ItemScoreRetriever,
    NeighbourIndex,
    Retriever,
    SimilarityRetriever,
    recent_matrix,
    trending_scores,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankingConfig:
    """Retriever parameters, candidate depth, label window and cut-offs of the ranker."""

    depth: int = 100  # per retriever; the union is the candidate set
    als: dict[str, Any] = field(
        default_factory=lambda: {
            "factors": 128,
            "regularization": 20.0,
            "alpha": 2.0,
            "iterations": 15,
        }
    )
    ease_regularization: float = 400.0
    knn_neighbours: int = 100
    recent_n: int = 10
    trending_days: int = 30
    rounds: int = 400
    # negatives kept per query for training (all positives stay): a seeded sample bounds the
    # ranker's fit time on big catalogs; LambdaRank only needs each positive against some
    max_negatives: int = 80
    # users whose candidate rows are built (and subsampled) at a time when making training rows
    row_block_users: int = 4096
    lgb_params: dict[str, Any] = field(default_factory=dict)
    block_users: int = 512


@dataclass
class FittedRetrievers:
    """The retrievers as of one time, with the vocabularies they score over."""

    users: Vocab
    items: Vocab
    as_of: pd.Timestamp
    retrievers: list[Retriever]
    matrix: csr_matrix  # users x items, everything before ``as_of``
    ease: EASEModel | None = None
    knn: ItemKNNModel | None = None

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.retrievers]


def assemble(
    als: ALSModel,
    ease: EASEModel | None,
    similarity: csr_matrix,
    trending: np.ndarray,
    popularity: np.ndarray,
    num_threads: int = 1,
    index: NeighbourIndex | None = None,
) -> list[Retriever]:
    """The retrievers in the ranker's order: ALS, EASE (item-kNN when the catalog is too big
    for EASE), more like the recent items, trending, popular. ``num_threads``: ALS's exact
    top-k threads (1, the calling thread; 0, every core, for the nightly); ``index``: ALS's
    top items from the FAISS index instead (requests)."""
    item_item: Retriever = (
        EASERetriever(ease) if ease is not None else SimilarityRetriever("itemknn", similarity)
    )
    return [
        ALSRetriever(als, num_threads, index),
        item_item,
        SimilarityRetriever("recent", similarity, use_recent=True),
        ItemScoreRetriever("trending", trending),
        ItemScoreRetriever("popular", popularity),
    ]


def fit_item_item(
    matrix: csr_matrix, config: RankingConfig
) -> tuple[EASEModel | None, ItemKNNModel]:
    """The item-item retrievers' models on a users x items matrix: EASE (None when the
    catalog is too big for it) and item-kNN (the "recent" retriever's similarities)."""
    knn = ItemKNNModel(config.knn_neighbours).fit(matrix)
    fits = matrix.shape[1] <= MAX_ITEMS
    ease = EASEModel(config.ease_regularization).fit(matrix) if fits else None
    return ease, knn


def fit_retrievers(
    interactions: pd.DataFrame,
    users: Vocab,
    items: Vocab,
    as_of: pd.Timestamp,
    config: RankingConfig,
    als: ALSModel | None = None,
) -> FittedRetrievers:
    """Fit every retriever on ``interactions`` (all before ``as_of``); ``als``: reuse a fitted
    ALS (the served model) instead of fitting one."""
    matrix = user_item_matrix(interactions, users, items)
    if als is None:
        als = als_config(config.als).build().fit(matrix)
    ease, knn = fit_item_item(matrix, config)
    popularity = np.asarray((matrix > 0).sum(axis=0), dtype=np.float32).ravel()
    trending = trending_scores(interactions, items, as_of, config.trending_days)
    # a batch of users (training rows, offline evaluation): ALS's exact top-k on every core
    retrievers = assemble(als, ease, knn.similarity, trending, popularity, num_threads=0)
    return FittedRetrievers(users, items, pd.Timestamp(as_of), retrievers, matrix, ease, knn)


def history_for(
    fitted: FittedRetrievers,
    interactions: pd.DataFrame,
    user_ids: Sequence[str],
    recent_n: int = 10,
) -> History:
    """The users' history as of ``fitted.as_of`` (``interactions``: everything before it)."""
    rows = fitted.users.rows(user_ids)
    block = csr_matrix((len(rows), len(fitted.items)), dtype=np.float32)
    known = rows >= 0
    if known.any():
        block = fitted.matrix[np.where(known, rows, 0)].multiply(known[:, None]).tocsr()
    recent = recent_matrix(interactions, user_ids, fitted.items, recent_n)
    return History(rows, block.astype(np.float32), recent)


@dataclass
class Block:
    """One block of users' candidates and their feature matrix."""

    user_ids: np.ndarray
    cands: CandidateSet
    x: np.ndarray


def candidate_block(
    fitted: FittedRetrievers,
    history: History,
    user_ids: Sequence[str],
    reader: FeatureReader,
    genres: Genres,
    config: RankingConfig,
    features_as_of: pd.Timestamp | None = None,
) -> Block:
    """Candidates for ``user_ids`` and their features as of ``features_as_of`` (default the
    retrievers' time; a later time is the deliberately leaky variant the tests use)."""
    cands = candidates(fitted.retrievers, history, config.depth, config.block_users)
    return block_features(fitted, history, user_ids, cands, reader, genres, features_as_of)


def block_features(
    fitted: FittedRetrievers,
    history: History,
    user_ids: Sequence[str],
    cands: CandidateSet,
    reader: FeatureReader,
    genres: Genres,
    features_as_of: pd.Timestamp | None = None,
    keep: np.ndarray | None = None,
) -> Block:
    """The feature matrix of ``cands`` (all of them, or the pairs ``keep`` selects: training
    reads Feast only for the rows it keeps; the per-user standardised scores are still over
    each user's whole candidate set, as at serving time)."""
    ids = np.asarray(list(user_ids), dtype=str)
    rets = retriever_columns(cands)
    if keep is not None:
        cands, rets = cands.take(keep), rets[keep]
    when = pd.Timestamp(features_as_of if features_as_of is not None else fitted.as_of)
    rows = reader.historical(entity_rows(cands, ids, fitted.items.ids, when))
    shares = user_genre_shares(history.matrix, genres)
    return Block(ids, cands, feature_matrix(cands, rows, shares, genres, rets))


@dataclass
class TrainingRows:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    retrievers: list[str]
    cutoffs: list[str]


def training_rows(
    interactions: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    label_days: float,
    users: Vocab,
    items: Vocab,
    reader: FeatureReader,
    genres: Genres,
    config: RankingConfig,
    leak_days: float = 0.0,
) -> TrainingRows:
    """Rows from every cut-off: retrievers fitted before it, candidates of the users active in
    the ``label_days`` after it, labels = their interactions in that window. ``leak_days``
    moves the features' time forward (0 in real use; the leakage test sets it).

    Users go ``config.row_block_users`` at a time: candidates, labels, then the rows kept
    (:func:`sample_mask`: every positive, at most ``config.max_negatives`` seeded negatives
    per query, no query without a positive, which teaches LambdaRank nothing), and one Feast
    read for the kept rows only. Memory is one block's candidates plus the kept rows, and
    Feast answers for a few rows per positive instead of every candidate."""
    xs, ys, gs = [], [], []
    names: list[str] = []
    seed = 0
    for cutoff in cutoffs:
        ts = interactions["event_timestamp"]
        before = interactions[ts < cutoff]
        end = cutoff + pd.Timedelta(days=label_days)
        future = interactions[(ts >= cutoff) & (ts < end)]
        active = sorted(set(future["user_id"]) & set(before["user_id"]))
        if not active:
            log.warning("cut-off %s: no user with history is active after it", cutoff)
            continue
        fitted = fit_retrievers(before, users, items, cutoff, config)
        names = fitted.names
        leak = cutoff + pd.Timedelta(days=leak_days) if leak_days else None
        built = kept = 0
        for start in range(0, len(active), config.row_block_users):
            who = active[start : start + config.row_block_users]
            history = history_for(fitted, before, who, config.recent_n)
            cands = candidates(fitted.retrievers, history, config.depth, config.block_users)
            y = labels(cands, who, items, future)
            keep = sample_mask(y, cands.group_sizes(), config.max_negatives, seed)
            seed += 1
            built += len(cands)
            if not keep.any():
                continue
            block = block_features(fitted, history, who, cands, reader, genres, leak, keep)
            xs.append(block.x)
            ys.append(y[keep])
            gs.append(block.cands.group_sizes())
            kept += len(block.x)
        log.info("cut-off %s: %d users, %d rows, %d kept", cutoff, len(active), built, kept)
    if not xs:
        raise InvalidDataset(
            f"no cut-off gave the ranker training rows: no user has interactions both before "
            f"and in the {label_days:g} days after any of {[str(c) for c in cutoffs]} "
            f"(the ranker needs history spanning its cut-offs plus one label window)"
        )
    return TrainingRows(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(gs),
        names,
        [pd.Timestamp(c).isoformat() for c in cutoffs],
    )


def sample_mask(y: np.ndarray, groups: np.ndarray, max_negatives: int, seed: int = 0) -> np.ndarray:
    """The training rows kept of a block (bool, per row): in every query that has a positive,
    all positives and at most ``max_negatives`` seeded random negatives; nothing of a query
    without a positive (most of them: only those queries' rows are sorted)."""
    keep = np.zeros(len(y), dtype=bool)
    if not len(y):
        return keep
    noise = np.random.default_rng(seed).random(len(y))
    noise[y > 0] = -1.0  # positives sort first and are always kept
    start = np.r_[0, np.cumsum(groups)[:-1]]
    positives = np.add.reduceat(y > 0, start)
    query = np.repeat(np.arange(len(groups)), groups)
    rows = np.flatnonzero(positives[query] > 0)
    order = rows[np.lexsort((noise[rows], query[rows]))]
    q = query[order]
    first = np.r_[0, np.flatnonzero(q[1:] != q[:-1]) + 1]  # each useful query's first row
    within = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    keep[order[within < positives[q] + max_negatives]] = True
    return keep


def fit_ranker(rows: TrainingRows, config: RankingConfig, label_days: float) -> Ranker:
    """The LambdaRank ranker on :func:`training_rows` (already subsampled per block)."""
    rows = TrainingRows(
        rows.x[np.repeat(rows.groups > 0, rows.groups)],
        rows.y[np.repeat(rows.groups > 0, rows.groups)],
        rows.groups[rows.groups > 0],
        rows.retrievers,
        rows.cutoffs,
    )
    return Ranker.fit(
        rows.x,
        rows.y,
        rows.groups,
        rows.retrievers,
        config.depth,
        params=config.lgb_params,
        rounds=config.rounds,
        cutoffs=rows.cutoffs,
        label_days=label_days,
    )


@dataclass
class RankedLists:
    """Top-``n`` per user of a block: item rows (-1 padded), ranker scores, provenance."""

    item_rows: np.ndarray
    scores: np.ndarray
    provenance: list[list[list[str]]]
    pairs: np.ndarray  # index of each listed item's pair in the candidate set (-1 padded)


def top_ranked(
    block: Block, scores: np.ndarray, n: int, with_provenance: bool = True
) -> RankedLists:
    """Each user's ``n`` best candidates by ``scores`` (one per candidate pair); provenance
    only when asked (serving names it for the few items that pass the rules)."""
    n_users = len(block.user_ids)
    out_rows = np.full((n_users, n), -1, dtype=np.int64)
    out_scores = np.full((n_users, n), -np.inf, dtype=np.float64)
    out_pairs = np.full((n_users, n), -1, dtype=np.int64)
    order = np.lexsort((-scores, block.cands.user_pos))
    pos = block.cands.user_pos[order]
    first = np.searchsorted(pos, np.arange(n_users))
    within = np.arange(len(order)) - first[pos]
    keep = within < n
    sel = order[keep]
    out_rows[pos[keep], within[keep]] = block.cands.item_rows[sel]
    out_scores[pos[keep], within[keep]] = scores[sel]
    out_pairs[pos[keep], within[keep]] = sel
    provenance = (
        [[block.cands.provenance(int(p)) for p in row if p >= 0] for row in out_pairs]
        if with_provenance
        else []
    )
    return RankedLists(out_rows, out_scores, provenance, out_pairs)


def rank_block(ranker: Ranker, block: Block, n: int, with_provenance: bool = True) -> RankedLists:
    """The ranker's top-``n`` per user of a candidate block (the nightly's and the API's
    second stage; rules and filters apply after it)."""
    if block.cands.retrievers != tuple(ranker.manifest.retrievers):
        raise ValueError(
            f"candidates from {block.cands.retrievers}, ranker trained on "
            f"{ranker.manifest.retrievers}"
        )
    return top_ranked(block, ranker.predict(block.x), n, with_provenance)
