"""Evaluation protocols: how interactions are split into train / validation / test.

Every split is seeded and reproducible, and each user-item pair lives in exactly one part
(duplicates keep their earliest interaction), so no test item can hide in a user's train part.

* ``random``: RecBole's default (``RS: [0.8, 0.1, 0.1]``, ``group_by: user``, ``order: RO``):
  each user's interactions are shuffled and cut by ratio, with RecBole's rounding. The model is
  fitted on train only; test ranking masks train and validation items.
* ``temporal``: one global cutoff T (train before T, test from T), the nightly system's reality;
  validation is the slice just before T. Test users and items must appear in train.
* ``leave-last-n``: each user's last n interactions are test, the n before them validation.
* ``user-temporal``: each user's most recent fraction is test (the training job's hold-out).

For ``temporal``, ``leave-last-n`` and ``user-temporal`` the final model is refitted on
train + validation before testing (``refit=True``); ``random`` is not, to match RecBole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

PROTOCOLS = ("random", "temporal", "leave-last-n", "user-temporal")


@dataclass
class Split:
    """Three parts of the same interactions table (validation may be empty)."""

    protocol: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    refit: bool
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "refit_on_train_and_valid": self.refit,
            **self.params,
            **{
                f"{name}_interactions": len(part)
                for name, part in (
                    ("train", self.train),
                    ("valid", self.valid),
                    ("test", self.test),
                )
            },
            "test_users": int(self.test["user_id"].nunique()),
        }


def filter_min_rating(interactions: pd.DataFrame, min_rating: float | None) -> pd.DataFrame:
    """Keep interactions rated at least ``min_rating`` (RecBole's ``val_interval``); None keeps
    all. Unrated interactions (NaN) count as positive feedback and are kept."""
    if min_rating is None:
        return interactions
    rating = interactions["rating"]
    return interactions[rating.isna() | (rating >= min_rating)].reset_index(drop=True)


def _dedupe(interactions: pd.DataFrame) -> pd.DataFrame:
    df = interactions.sort_values(["user_id", "event_timestamp", "item_id"], kind="stable")
    return df.drop_duplicates(["user_id", "item_id"], keep="first").reset_index(drop=True)


def recbole_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """Part sizes for one user exactly as RecBole's ``_calcu_split_ids`` computes them.

    Example: 23 interactions at 8:1:1 give ``[19, 2, 2]``; 5 give ``[3, 1, 1]``.
    """
    cnt = [int(r * total) for r in ratios]
    cnt[0] = total - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def random_split(
    interactions: pd.DataFrame, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42
) -> Split:
    """Per-user random ratio split (RecBole's ``RS`` with ``order: RO``)."""
    if len(ratios) != 3 or min(ratios) < 0 or not np.isclose(sum(ratios), 1.0):
        raise ValueError("ratios must be three non-negative numbers summing to 1")
    df = _dedupe(interactions)
    rng = np.random.default_rng(seed)
    df = df.iloc[rng.permutation(len(df))]
    df = df.sort_values("user_id", kind="stable").reset_index(drop=True)
    rank = df.groupby("user_id").cumcount().to_numpy()
    size = df.groupby("user_id")["item_id"].transform("size").to_numpy()
    part = np.zeros(len(df), dtype=np.int8)
    for total in np.unique(size):
        n_train, n_valid, _ = recbole_counts(int(total), ratios)
        sel = size == total
        part[sel & (rank >= n_train)] = 1
        part[sel & (rank >= n_train + n_valid)] = 2
    return Split(
        "random",
        df[part == 0].reset_index(drop=True),
        df[part == 1].reset_index(drop=True),
        df[part == 2].reset_index(drop=True),
        refit=False,
        params={"ratios": list(ratios), "seed": seed},
    )


def _known_only(part: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    keep = part["user_id"].isin(train["user_id"]) & part["item_id"].isin(train["item_id"])
    return part[keep].reset_index(drop=True)


def temporal_split(
    interactions: pd.DataFrame,
    cutoff: datetime | None = None,
    test_fraction: float = 0.1,
    valid_fraction: float = 0.1,
) -> Split:
    """Global time cutoff. Without ``cutoff``, T is the timestamp quantile leaving
    ``test_fraction`` of interactions after it; validation is the ``valid_fraction`` before T."""
    df = _dedupe(interactions)
    ts = df["event_timestamp"]
    t_test = pd.Timestamp(cutoff) if cutoff is not None else ts.quantile(1 - test_fraction)
    if t_test.tzinfo is None:
        t_test = t_test.tz_localize("UTC")
    before = df[ts < t_test]
    if before.empty:
        raise ValueError(f"no interactions before the cutoff {t_test}")
    share = valid_fraction / max(1e-9, 1 - test_fraction) if cutoff is None else valid_fraction
    t_valid = before["event_timestamp"].quantile(1 - share) if share > 0 else t_test
    train = before[before["event_timestamp"] < t_valid].reset_index(drop=True)
    valid = _known_only(before[before["event_timestamp"] >= t_valid], train)
    test = _known_only(df[ts >= t_test], pd.concat([train, valid]))
    return Split(
        "temporal",
        train,
        valid,
        test,
        refit=True,
        params={"cutoff": t_test.isoformat(), "valid_from": pd.Timestamp(t_valid).isoformat()},
    )


def _per_user_tail(df: pd.DataFrame, n_test: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    rank = df.groupby("user_id").cumcount().to_numpy()
    size = df.groupby("user_id")["item_id"].transform("size").to_numpy()
    part = np.zeros(len(df), dtype=np.int8)
    part[rank >= size - n_test - n_valid] = 1
    part[rank >= size - n_test] = 2
    return part


def leave_last_n(interactions: pd.DataFrame, n: int = 1, valid: bool = True) -> Split:
    """Each user's last ``n`` interactions are test (and the ``n`` before, validation); users
    who would keep no training interaction stay entirely in train."""
    if n < 1:
        raise ValueError("n must be at least 1")
    df = _dedupe(interactions)
    size = df.groupby("user_id")["item_id"].transform("size").to_numpy()
    n_valid = n if valid else 0
    ok = size > n + n_valid
    part = _per_user_tail(df, np.where(ok, n, 0), np.where(ok, n_valid, 0))
    return _parts("leave-last-n", df, part, {"n": n})


def sample_users(
    interactions: pd.DataFrame, max_users: int, seed: int
) -> tuple[pd.DataFrame, int | None]:
    """At most ``max_users`` users' interactions (a seeded sample), and the sample size (None
    when everyone was kept)."""
    users = interactions["user_id"].unique()
    if len(users) <= max_users:
        return interactions, None
    keep = np.random.default_rng(seed).choice(users, max_users, replace=False)
    return interactions[interactions["user_id"].isin(keep)], max_users


def user_temporal(
    interactions: pd.DataFrame, test_fraction: float = 0.2, valid_fraction: float = 0.0
) -> Split:
    """Each user's most recent ``test_fraction`` is test (floor), ``valid_fraction`` before it
    validation. Example: 10 interactions at 0.2 keep the 8 oldest for training."""
    if not 0 < test_fraction < 1 or not 0 <= valid_fraction < 1 - test_fraction:
        raise ValueError("fractions must satisfy 0 < test and 0 <= valid < 1 - test")
    df = _dedupe(interactions)
    size = df.groupby("user_id")["item_id"].transform("size").to_numpy()
    n_test = np.floor(size * test_fraction).astype(int)
    n_valid = np.floor(size * valid_fraction).astype(int)
    ok = size - n_test - n_valid >= 1
    part = _per_user_tail(df, np.where(ok, n_test, 0), np.where(ok, n_valid, 0))
    params = {"test_fraction": test_fraction, "valid_fraction": valid_fraction}
    return _parts("user-temporal", df, part, params)


def _parts(name: str, df: pd.DataFrame, part: np.ndarray, params: dict[str, Any]) -> Split:
    train = df[part == 0].reset_index(drop=True)
    return Split(
        name,
        train,
        _known_only(df[part == 1], train),
        _known_only(df[part == 2], train),
        refit=True,
        params=params,
    )


def make_split(protocol: str, interactions: pd.DataFrame, seed: int = 42, **options: Any) -> Split:
    """Dispatch by protocol name (see :data:`PROTOCOLS`)."""
    if protocol == "random":
        return random_split(interactions, seed=seed, **options)
    if protocol == "temporal":
        return temporal_split(interactions, **options)
    if protocol == "leave-last-n":
        return leave_last_n(interactions, **options)
    if protocol == "user-temporal":
        return user_temporal(interactions, **options)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
