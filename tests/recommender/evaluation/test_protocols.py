"""Splits: no leakage between parts, no future in train, RecBole's rounding, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation.protocols import (
    PROTOCOLS,
    filter_min_rating,
    leave_last_n,
    make_split,
    random_split,
    recbole_counts,
    sample_users,
    temporal_split,
    user_temporal,
)


def interactions(rng: np.random.Generator, users: int = 40, items: int = 60) -> pd.DataFrame:
    rows = []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(users):
        n = int(rng.integers(3, 30))
        for i in rng.choice(items, size=n, replace=False):
            day = float(rng.uniform(0, 100))
            rows.append(
                (f"u{u}", f"i{i}", float(rng.integers(1, 6)), start + pd.Timedelta(days=day))
            )
    # a duplicate pair: the user met the same item twice
    rows.append(("u0", rows[0][1], 5.0, start + pd.Timedelta(days=200)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "event_timestamp"])


def pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["user_id"], df["item_id"], strict=True))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_test_item_appears_in_the_users_train_or_valid_part(
    protocol: str, rng: np.random.Generator
) -> None:
    split = make_split(protocol, interactions(rng), seed=7)
    assert len(split.test) > 0 and len(split.train) > 0
    assert not pairs(split.test) & pairs(split.train)
    assert not pairs(split.test) & pairs(split.valid)
    assert not pairs(split.valid) & pairs(split.train)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_splits_are_reproducible_from_the_seed(protocol: str, rng: np.random.Generator) -> None:
    df = interactions(rng)
    a, b = make_split(protocol, df, seed=3), make_split(protocol, df, seed=3)
    pd.testing.assert_frame_equal(a.test, b.test)
    pd.testing.assert_frame_equal(a.train, b.train)


def test_random_split_seed_changes_the_split(rng: np.random.Generator) -> None:
    df = interactions(rng)
    assert pairs(random_split(df, seed=1).test) != pairs(random_split(df, seed=2).test)


def test_recbole_rounding_by_hand() -> None:
    assert recbole_counts(23, (0.8, 0.1, 0.1)) == [19, 2, 2]
    assert recbole_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert recbole_counts(5, (0.8, 0.1, 0.1)) == [3, 1, 1]  # 0.5 rounds up to one each
    assert recbole_counts(2, (0.8, 0.1, 0.1)) == [1, 0, 1]  # keeps at least one for training
    assert recbole_counts(1, (0.8, 0.1, 0.1)) == [1, 0, 0]


def test_random_split_sizes_per_user_follow_recbole(rng: np.random.Generator) -> None:
    df = interactions(rng).drop_duplicates(["user_id", "item_id"])
    split = random_split(df)
    for user, total in df.groupby("user_id").size().items():
        got = [
            int((part["user_id"] == user).sum()) for part in (split.train, split.valid, split.test)
        ]
        assert got == recbole_counts(int(total), (0.8, 0.1, 0.1))
    assert not split.refit


def test_temporal_split_has_no_future_in_train(rng: np.random.Generator) -> None:
    df = interactions(rng)
    split = temporal_split(df, test_fraction=0.2, valid_fraction=0.1)
    cutoff = pd.Timestamp(split.params["cutoff"])
    assert split.train["event_timestamp"].max() < pd.Timestamp(split.params["valid_from"])
    assert split.valid["event_timestamp"].max() < cutoff
    assert split.test["event_timestamp"].min() >= cutoff
    # test users and items are known to the model (train + validation)
    known = pd.concat([split.train, split.valid])
    assert split.test["user_id"].isin(known["user_id"]).all()
    assert split.test["item_id"].isin(known["item_id"]).all()


def test_temporal_split_with_an_explicit_cutoff(rng: np.random.Generator) -> None:
    df = interactions(rng)
    split = temporal_split(df, cutoff=pd.Timestamp("2024-03-01", tz="UTC"), valid_fraction=0.0)
    assert split.train["event_timestamp"].max() < pd.Timestamp("2024-03-01", tz="UTC")
    assert split.valid.empty
    with pytest.raises(ValueError, match="no interactions before"):
        temporal_split(df, cutoff=pd.Timestamp("2000-01-01", tz="UTC"))


def test_leave_last_n_takes_each_users_latest(rng: np.random.Generator) -> None:
    df = interactions(rng).drop_duplicates(["user_id", "item_id"])
    split = leave_last_n(df, n=2)
    for user, group in split.test.groupby("user_id"):
        assert len(group) <= 2
        train = split.train[split.train["user_id"] == user]
        assert train["event_timestamp"].max() <= group["event_timestamp"].min()
    with pytest.raises(ValueError):
        leave_last_n(df, n=0)


def test_user_temporal_keeps_the_oldest_for_training() -> None:
    ts = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    items = [f"i{j}" for j in range(10)]
    df = pd.DataFrame(
        {
            "user_id": ["u"] * 10 + ["v"] * 10,
            "item_id": items + items[::-1],  # v saw u's latest items first
            "rating": 4.0,
            "event_timestamp": list(ts) * 2,
        }
    )
    split = user_temporal(df, test_fraction=0.2)
    u_train = split.train[split.train["user_id"] == "u"]
    assert u_train["item_id"].tolist() == items[:8]
    assert split.test[split.test["user_id"] == "u"]["item_id"].tolist() == ["i8", "i9"]
    assert split.test[split.test["user_id"] == "v"]["item_id"].tolist() == ["i1", "i0"]
    # a test item nobody has in train cannot be recommended: it is dropped from the truth
    alone = user_temporal(df[df["user_id"] == "u"], test_fraction=0.2)
    assert alone.test.empty


def test_rating_threshold_and_unknown_protocol(rng: np.random.Generator) -> None:
    df = interactions(rng)
    df.loc[0, "rating"] = np.nan
    kept = filter_min_rating(df, 3)
    assert (kept["rating"].dropna() >= 3).all() and kept["rating"].isna().sum() == 1
    assert filter_min_rating(df, None) is df
    with pytest.raises(ValueError, match="unknown protocol"):
        make_split("kfold", df)


def test_sample_users_keeps_whole_users_and_is_seeded() -> None:
    inter = pd.DataFrame(
        {"user_id": [f"u{i // 3}" for i in range(300)], "item_id": [f"i{i}" for i in range(300)]}
    )
    same, n = sample_users(inter, 1000, seed=1)
    assert n is None and same is inter
    a, n = sample_users(inter, 10, seed=1)
    b, _ = sample_users(inter, 10, seed=1)
    assert n == 10 and a["user_id"].nunique() == 10 and a.equals(b)
    assert a.groupby("user_id").size().eq(3).all()  # a sampled user keeps all their rows
