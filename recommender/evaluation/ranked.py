"""Offline evaluation of the two-stage model on a split: each retriever alone, the union's
recall (the ceiling any ranker can reach), the learned ranker, and paired bootstrap intervals
of the ranker's NDCG against every retriever. Pure.

* ``temporal``: the ranker learns from several cut-offs before the validation start (each
  with its retrievers fitted before it, features as of it, labels in the next ``delta`` days,
  ``delta`` = the validation span), the last one labelled by the validation part itself; at
  test time the retrievers are refitted on train + validation and features are as of the test
  cut-off.
* ``random`` (RecBole): no time order, so retrievers and features come from the training part
  only (features as of its end); the ranker learns validation labels, and test ranking masks
  train and validation items, like the other models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recommender.data.tables import build_tables
from recommender.data.vocab import Vocab
from recommender.evaluation.bootstrap import paired_bootstrap
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.protocols import Split
from recommender.evaluation.runner import score_lists
from recommender.ranking.candidates import CandidateSet
from recommender.ranking.dataset import TableReader, labels
from recommender.ranking.features import Genres
from recommender.ranking.ranker import Ranker
from recommender.ranking.twostage import (
    Block,
    RankingConfig,
    TrainingRows,
    candidate_block,
    fit_ranker,
    fit_retrievers,
    history_for,
    training_rows,
)

log = logging.getLogger(__name__)


def ordered_lists(
    cands: CandidateSet, key: np.ndarray, excluded: np.ndarray, n_users: int, n: int
) -> list[list[int]]:
    """Per user position, the item rows of its candidates by ``key`` (higher first), without
    pairs that are ``excluded`` or have a NaN key; at most ``n``."""
    ok = ~excluded & ~np.isnan(key)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((-key[idx], cands.user_pos[idx]))]
    pos = cands.user_pos[order]
    bounds = np.searchsorted(pos, np.arange(n_users + 1))
    items = cands.item_rows[order]
    return [items[bounds[u] : bounds[u + 1]][:n].tolist() for u in range(n_users)]


def _truth(frame: pd.DataFrame, user_ids: Sequence[str], items: Vocab) -> list[set[int]]:
    index = {u: j for j, u in enumerate(user_ids)}
    out: list[set[int]] = [set() for _ in user_ids]
    rows = items.rows(frame["item_id"])
    for u, i in zip(frame["user_id"].tolist(), rows.tolist(), strict=True):
        if u in index and i >= 0:
            out[index[u]].add(i)
    return out


def _excluded(
    cands: CandidateSet, user_ids: Sequence[str], mask: pd.DataFrame, items: Vocab
) -> np.ndarray:
    if mask.empty:
        return np.zeros(len(cands), dtype=bool)
    pairs = pd.MultiIndex.from_arrays(
        [np.asarray(user_ids)[cands.user_pos], items.ids[cands.item_rows]]
    )
    return np.asarray(pairs.isin(pd.MultiIndex.from_frame(mask[["user_id", "item_id"]])))


def _random_rows(split: Split, fitted_block: Block, items: Vocab) -> TrainingRows:
    y = labels(fitted_block.cands, fitted_block.user_ids, items, split.valid)
    return TrainingRows(
        fitted_block.x, y, fitted_block.cands.group_sizes(), list(fitted_block.cands.retrievers), []
    )


def evaluate_two_stage(
    split: Split,
    users_table: pd.DataFrame,
    items_table: pd.DataFrame,
    ks: tuple[int, ...] = (10,),
    config: RankingConfig | None = None,
    n_cutoffs: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit retrievers and the ranker on the split's training side and score on its test part.

    Returns ``{"models": {name: {"metrics": ...}}, "union": ..., "intervals": [...],
    "ranker": manifest summary}``; model names are ``retriever:<name>`` and ``ranked``.
    """
    config = config or RankingConfig()
    every = pd.concat([split.train, split.valid, split.test], ignore_index=True)
    users = Vocab.from_ids(sorted(every["user_id"].unique()))
    items = Vocab.from_ids(sorted(every["item_id"].unique()))
    genre_lists = items_table.set_index("item_id")["genres"].reindex(items.ids)
    genres = Genres.from_lists(
        [[str(x) for x in g] if isinstance(g, list | np.ndarray) else [] for g in genre_lists]
    )
    temporal = split.protocol == "temporal"
    feature_source = every if temporal else split.train
    reader = TableReader(build_tables(feature_source, users_table, items_table))
    t0 = time.perf_counter()
    if temporal:
        t_test = pd.Timestamp(split.params["cutoff"])
        t_valid = pd.Timestamp(split.params["valid_from"])
        delta = t_test - t_valid
        label_days = delta / pd.Timedelta(days=1)
        cutoffs = [t_valid - k * delta for k in reversed(range(n_cutoffs))]
        known = pd.concat([split.train, split.valid], ignore_index=True)
        rows = training_rows(known, cutoffs, label_days, users, items, reader, genres, config)
        history_frame, as_of = known, t_test
        fitted = fit_retrievers(known, users, items, t_test, config)
        mask = split.valid.iloc[0:0]
    else:
        as_of = split.train["event_timestamp"].max().ceil("D") + pd.Timedelta(days=1)
        fitted = fit_retrievers(split.train, users, items, as_of, config)
        valid_users = sorted(split.valid["user_id"].unique())
        history = history_for(fitted, split.train, valid_users, config.recent_n)
        block = candidate_block(fitted, history, valid_users, reader, genres, config)
        rows = _random_rows(split, block, items)
        history_frame, mask = split.train, split.valid
        label_days = 0.0  # no time order: the validation part is the label set
    rows_seconds = time.perf_counter() - t0
    ranker = fit_ranker(rows, config, label_days)
    test_users = sorted(split.test["user_id"].unique())
    history = history_for(fitted, history_frame, test_users, config.recent_n)
    block = candidate_block(fitted, history, test_users, reader, genres, config, as_of)
    excluded = _excluded(block.cands, test_users, mask, items)
    truth = _truth(split.test, test_users, items)
    popularity = np.asarray((fitted.matrix > 0).sum(axis=0)).ravel()
    return _score(
        block, ranker, excluded, truth, ks, popularity, fitted.matrix.shape[0], rows_seconds, seed
    )


def _score(
    block: Block,
    ranker: Ranker,
    excluded: np.ndarray,
    truth: list[set[int]],
    ks: tuple[int, ...],
    popularity: np.ndarray,
    n_history_users: int,
    rows_seconds: float,
    seed: int,
) -> dict[str, Any]:
    cands, n_users, n = block.cands, len(block.user_ids), max(ks)
    lists = {
        f"retriever:{name}": ordered_lists(cands, -cands.ranks[:, j], excluded, n_users, n)
        for j, name in enumerate(cands.retrievers)
    }
    t0 = time.perf_counter()
    scores = ranker.predict(block.x)
    lists["ranked"] = ordered_lists(cands, scores, excluded, n_users, n)
    predict_s = time.perf_counter() - t0
    scored = [u for u, t in enumerate(truth) if t]
    models = {
        name: {
            "metrics": score_lists(
                [got[u] for u in scored],
                [truth[u] for u in scored],
                ks,
                popularity,
                n_history_users,
            )
        }
        for name, got in lists.items()
    }
    per_user = {
        name: np.array([ndcg_at_k(got[u], truth[u], 10) for u in scored])
        for name, got in lists.items()
    }
    intervals = [
        paired_bootstrap(per_user["ranked"], per_user[name], "ranked", name, seed=seed).as_dict()
        for name in lists
        if name != "ranked"
    ]
    union = ordered_lists(cands, np.zeros(len(cands)), excluded, n_users, len(cands))
    recall = [len(set(union[u]) & truth[u]) / len(truth[u]) for u in scored]
    return {
        "models": models,
        "per_user_ndcg@10": {
            name: dict(zip(block.user_ids[scored].tolist(), v.tolist(), strict=True))
            for name, v in per_user.items()
        },
        "union": {
            "recall": float(np.mean(recall)),
            "mean_candidates": float(np.mean([len(union[u]) for u in scored])),
            "depth_per_retriever": int(ranker.manifest.depth),
        },
        "intervals": intervals,
        "ranker": {
            "train_rows": ranker.manifest.train_rows,
            "train_queries": ranker.manifest.train_queries,
            "cutoffs": ranker.manifest.cutoffs,
            "rows_seconds": round(rows_seconds, 1),
            "fit_seconds": ranker.manifest.fit_seconds,
            "predict_seconds": round(predict_s, 2),
            "importance": dict(sorted(ranker.importance().items(), key=lambda kv: -kv[1])[:10]),
        },
        "users": len(scored),
    }
