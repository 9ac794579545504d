import pandas as pd

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
