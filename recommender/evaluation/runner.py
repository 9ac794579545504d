"""Fit models on a split and score full rankings (all items, each user's known items excluded).

Validation phase: fit on train, rank against validation. Test phase: fit on train (or on
train + validation when the protocol refits), rank against test with train and validation
items excluded. Models score from their fitted history only, so a non-refitted model never
sees validation interactions as input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recommender.data.vocab import Vocab, user_item_matrix
from recommender.evaluation.metrics import (
    average_popularity,
    catalog_coverage,
    mean_metrics,
    ndcg_at_k,
    novelty,
)
from recommender.evaluation.protocols import Split
from recommender.models import Recommender, build_model


@dataclass
class EvalData:
    """Vocabularies over the whole split (full ranking over every item) and its matrices."""

    users: Vocab
    items: Vocab
    train: csr_matrix
    valid: csr_matrix
    test: pd.DataFrame

    @classmethod
    def from_split(cls, split: Split) -> EvalData:
        parts = pd.concat([split.train, split.valid, split.test])
        users = Vocab.from_ids(sorted(parts["user_id"].unique()))
        items = Vocab.from_ids(sorted(parts["item_id"].unique()))
        return cls(
            users,
            items,
            user_item_matrix(split.train, users, items),
            user_item_matrix(split.valid, users, items),
            split.test,
        )


def truth_by_row(frame: pd.DataFrame, users: Vocab, items: Vocab) -> dict[int, set[int]]:
    """Relevant item rows per user row (interactions with unknown ids are dropped)."""
    u, i = users.rows(frame["user_id"]), items.rows(frame["item_id"])
    keep = (u >= 0) & (i >= 0)
    out: dict[int, set[int]] = {}
    for row, col in zip(u[keep].tolist(), i[keep].tolist(), strict=True):
        out.setdefault(row, set()).add(col)
    return out


def top_lists(
    model: Recommender,
    history: csr_matrix,
    rows: np.ndarray,
    n: int,
    extra_seen: csr_matrix | None = None,
    batch_size: int = 1024,
) -> list[list[int]]:
    """Top-``n`` item rows per user row, scored from ``history``; items in ``extra_seen`` (e.g.
    validation items at test time) are removed too, by over-fetching and filtering."""
    out: list[list[int]] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        extra = extra_seen[batch] if extra_seen is not None else None
        fetch = n + (int(np.diff(extra.indptr).max()) if extra is not None and extra.nnz else 0)
        ids, _ = model.recommend(batch, history[batch], fetch)
        for j, r in enumerate(ids):
            drop = set(extra[j].indices.tolist()) if extra is not None else set()
            out.append([int(x) for x in r if x >= 0 and int(x) not in drop][:n])
    return out


def score_lists(
    lists: list[list[int]],
    truth: list[set[int]],
    ks: tuple[int, ...],
    popularity: np.ndarray,
    n_users: int,
) -> dict[str, float]:
    """Accuracy metrics at each k plus coverage, novelty and average popularity."""
    out = mean_metrics(lists, truth, ks)
    pop = dict(enumerate(popularity.astype(int).tolist()))
    for k in ks:
        out[f"coverage@{k}"] = catalog_coverage(lists, len(popularity), k)
        out[f"novelty@{k}"] = novelty(lists, pop, n_users, k)
        out[f"arp@{k}"] = average_popularity(lists, pop, k)
    out["users"] = float(sum(1 for t in truth if t))
    return out


def evaluate_model(
    name: str,
    params: dict[str, Any] | None,
    data: EvalData,
    ks: tuple[int, ...] = (10,),
    phase: str = "test",
    refit: bool = False,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit ``name`` with ``params`` and score it on the validation or test part (on a seeded
    sample of ``max_users`` of its users when there are more)."""
    if phase not in ("valid", "test"):
        raise ValueError("phase must be 'valid' or 'test'")
    if phase == "valid":
        history, extra = data.train, None
        truth_map = {
            int(r): set(data.valid[r].indices.tolist()) for r in np.unique(data.valid.nonzero()[0])
        }
    else:
        both = (data.train + data.valid).tocsr()
        history, extra = (both, None) if refit else (data.train, data.valid)
        truth_map = truth_by_row(data.test, data.users, data.items)
    model = build_model(name, params)
    t0 = time.perf_counter()
    model.fit(history)
    fit_s = time.perf_counter() - t0
    rows = np.array(sorted(truth_map), dtype=np.int64)
    if max_users is not None and len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_users, replace=False))
    t0 = time.perf_counter()
    lists = top_lists(model, history, rows, max(ks), extra)
    rank_s = time.perf_counter() - t0
    popularity = np.asarray((history > 0).sum(axis=0)).ravel()
    truth = [truth_map[int(r)] for r in rows]
    metrics = score_lists(lists, truth, ks, popularity, int(history.shape[0]))
    per_user = {
        str(data.users.ids[r]): ndcg_at_k(got, rel, 10)
        for r, got, rel in zip(rows.tolist(), lists, truth, strict=True)
        if rel
    }
    return {
        "model": name,
        "params": model.params(),
        "phase": phase,
        "metrics": metrics,
        "fit_seconds": round(fit_s, 3),
        "rank_seconds": round(rank_s, 3),
        "per_user_ndcg@10": per_user,  # for paired intervals; not written to the report
    }
