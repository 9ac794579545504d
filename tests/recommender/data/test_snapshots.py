import numpy as np
import pandas as pd
import pytest

from recommender.data.snapshots import activity_snapshots, recent_items_snapshots


def events(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "event_timestamp"])
    df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True)
    return df


def test_activity_snapshots_by_hand() -> None:
    df = events(
        [
            ("u", "i1", 4.0, "2024-01-01 10:00"),
            ("u", "i2", 2.0, "2024-01-01 20:00"),
            ("u", "i3", 5.0, "2024-01-20 09:00"),
        ]
    )
    snap = activity_snapshots(df, "user_id", window_days=30).set_index("event_timestamp")
    day = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    # first snapshot: the day after the first active day, both events of that day
    assert snap.loc[day("2024-01-02"), "interactions_30d"] == 2
    assert snap.loc[day("2024-01-02"), "mean_rating_30d"] == 3.0
    # after the third event
    assert snap.loc[day("2024-01-21"), "interactions_total"] == 3
    assert abs(snap.loc[day("2024-01-21"), "mean_rating_total"] - 11 / 3) < 1e-6
    # 30 days after 2024-01-02 the first day leaves the window
    assert snap.loc[day("2024-02-01"), "interactions_30d"] == 1
    assert snap.loc[day("2024-02-01"), "mean_rating_30d"] == 5.0
    assert snap.loc[day("2024-02-20"), "interactions_30d"] == 0
    assert snap.loc[day("2024-02-20"), "mean_rating_30d"] == 0.0
    assert snap.loc[day("2024-02-20"), "interactions_total"] == 3


def test_no_snapshot_sees_an_event_at_or_after_its_timestamp() -> None:
    df = events([("u", f"i{k}", 3.0, f"2024-03-{k + 1:02d} 12:00") for k in range(10)])
    snap = activity_snapshots(df, "user_id")
    for _, row in snap.iterrows():
        visible = (df["event_timestamp"] < row["event_timestamp"]).sum()
        assert row["interactions_total"] == visible


def test_recent_items_newest_first_and_capped() -> None:
    df = events(
        [("u", f"i{k}", 3.0, f"2024-01-01 0{k}:00") for k in range(5)]
        + [("v", "x", 1.0, "2024-01-03 00:00")]
    )
    snap = recent_items_snapshots(df, n=3)
    u = snap[snap.user_id == "u"]
    assert len(u) == 1
    assert u["recent_item_ids"].iloc[0] == ["i4", "i3", "i2"]
    assert u["event_timestamp"].iloc[0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert snap[snap.user_id == "v"]["recent_item_ids"].iloc[0] == ["x"]


def random_events(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": rng.choice([f"u{k}" for k in range(7)], n),
            "item_id": rng.choice([f"i{k}" for k in range(25)], n),
            "rating": (rng.integers(1, 11, n) / 2).astype("float32"),
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 120 * 24, n), unit="h"),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("key", ["user_id", "item_id"])
def test_every_activity_row_counts_exactly_the_events_before_it(seed: int, key: str) -> None:
    """Brute force: each row's totals are the entity's events before its timestamp, its
    window the ones in the 30 days before; rows sit where a value can change, sorted."""
    df = random_events(seed)
    snap = activity_snapshots(df, key, window_days=30)
    assert snap.equals(snap.sort_values([key, "event_timestamp"]).reset_index(drop=True))
    window = pd.Timedelta(days=30)
    for row in snap.itertuples(index=False):
        t = row.event_timestamp
        mine = df[df[key] == getattr(row, key)]
        seen = mine[mine["event_timestamp"] < t]
        recent = seen[seen["event_timestamp"] >= t - window]
        assert row.interactions_total == len(seen)
        assert row.interactions_30d == len(recent)
        assert row.mean_rating_30d == pytest.approx(recent["rating"].mean() if len(recent) else 0)
        assert row.mean_rating_total == pytest.approx(seen["rating"].mean())
    days = df["event_timestamp"].dt.floor("D") + pd.Timedelta(days=1)
    expected = set(zip(df[key], days, strict=True)) | set(zip(df[key], days + window, strict=True))
    assert set(zip(snap[key], snap["event_timestamp"], strict=True)) == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_every_recent_items_row_lists_the_last_events_before_it(seed: int) -> None:
    df = random_events(seed)
    df["event_timestamp"] = df["event_timestamp"] + pd.to_timedelta(np.arange(len(df)), unit="s")
    snap = recent_items_snapshots(df, n=5)
    for row in snap.itertuples(index=False):
        mine = df[(df.user_id == row.user_id) & (df.event_timestamp < row.event_timestamp)]
        want = mine.sort_values("event_timestamp")["item_id"].tolist()[::-1][:5]
        assert row.recent_item_ids == want
    days = df["event_timestamp"].dt.floor("D") + pd.Timedelta(days=1)
    assert len(snap) == len(set(zip(df.user_id, days, strict=True)))
