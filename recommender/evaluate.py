"""Hold-out evaluation of a model on the same data it will serve (full ranking over all items).

The split is per user and temporal: each user's most recent ``fraction`` of interactions is
held out, so the model is always asked about the future of a user it knows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recommender.matrix import Vocab
from recommender.metrics import METRICS, mean_metric
from recommender.models.base import Recommender


def split_last_fraction(
    interactions: pd.DataFrame, fraction: float = 0.2, min_train: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user temporal hold-out; users with too few interactions stay entirely in train.

    Example: a user with 10 interactions keeps the 8 oldest for training and tests on 2.
    """
    if not 0 < fraction < 1:
        raise ValueError("fraction must be in (0, 1)")
    df = interactions.sort_values(["user_id", "event_timestamp", "item_id"], kind="stable")
    rank = df.groupby("user_id").cumcount()
    size = df.groupby("user_id")["item_id"].transform("size")
    n_test = np.floor(size * fraction).astype(int)
    n_test = np.where(size - n_test >= min_train, n_test, 0)
    test_mask = rank >= size - n_test
    return df[~test_mask].reset_index(drop=True), df[test_mask].reset_index(drop=True)


def evaluate(
    model: Recommender,
    train: csr_matrix,
    test: pd.DataFrame,
    users: Vocab,
    items: Vocab,
    k: int = 10,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Mean ``ndcg/precision/recall@k`` over test users, excluding their training items."""
    truth_by_user = test.groupby("user_id")["item_id"].agg(set)
    rows = users.rows(truth_by_user.index)
    known = rows >= 0
    rows, truth = rows[known], list(truth_by_user[known])
    lists: list[list[str]] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        ids, _ = model.recommend(batch, train[batch], k)
        lists.extend([[items.ids[j] for j in r if j >= 0] for r in ids])
    out = {f"{name}@{k}": mean_metric(fn, lists, truth, k) for name, fn in METRICS.items()}
    out["users"] = float(len(rows))
    return out
