"""Incremental ingest equals the full rebuild (``build_tables`` on the merged interactions),
table by table, rows and dtypes, and parquet schemas, for new days, the last day again, late
events, new users, items seen for the first time, and the same events read twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recommender.data.incremental import append_interactions
from recommender.data.schema import canonical_interactions
from recommender.data.snapshots import (
    activity_snapshots,
    daily_counts,
    recent_items_since,
    recent_items_snapshots,
    snapshots_since,
)
from recommender.data.tables import build_tables, read_table, write_tables
from recommender.errors import InvalidDataset
from recommender.featurestore import names
from tests.support.synthetic import synthetic_tables

TABLES = {
    "interactions": ["user_id", "item_id", "event_timestamp", "rating"],
    "users": ["user_id"],
    "items": ["item_id"],
    names.USER_ACTIVITY: ["user_id", "event_timestamp"],
    names.ITEM_STATS: ["item_id", "event_timestamp"],
    names.USER_RECENT_ITEMS: ["user_id", "event_timestamp"],
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    inter, users, items = synthetic_tables(np.random.default_rng(7))
    extra = {"item_id": "c0", "title": "Never watched", "year": 1999, "genres": "Drama"}
    items = pd.concat([items, pd.DataFrame([extra])], ignore_index=True)  # no interactions yet
    out = tmp_path / "data"
    write_tables(build_tables(inter, users, items), out)
    return out


def _rebuild(data_dir: Path, new: pd.DataFrame, out: Path) -> None:
    """The full rebuild ``ingest_event_log`` did before: concatenate, drop identical rows,
    ``build_tables`` with the stored users and items."""
    current = read_table(data_dir, "interactions")
    merged = pd.concat([current, canonical_interactions(new)], ignore_index=True)
    merged = merged.drop_duplicates(["user_id", "item_id", "rating", "event_timestamp"])
    users, items = read_table(data_dir, "users"), read_table(data_dir, "items")
    items["genres"] = items["genres"].map(list)  # parquet gives numpy arrays back
    write_tables(build_tables(merged, users, items), out)


def _assert_same_tables(got: Path, want: Path) -> None:
    for name, order in TABLES.items():
        path_got, path_want = got / f"{name}.parquet", want / f"{name}.parquet"
        schema_got, schema_want = pq.read_schema(path_got), pq.read_schema(path_want)
        assert schema_got.remove_metadata() == schema_want.remove_metadata(), name
        a = pd.read_parquet(path_got).sort_values(order, kind="stable").reset_index(drop=True)
        b = pd.read_parquet(path_want).sort_values(order, kind="stable").reset_index(drop=True)
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


def _events(data_dir: Path, times: list[pd.Timestamp], users: list[str], items: list[str]):
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "rating": np.arange(len(times)) % 5 + 1.0,
            "timestamp": times,
        }
    )


def _span(data_dir: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    ts = read_table(data_dir, "interactions", columns=["event_timestamp"])["event_timestamp"]
    return ts.min(), ts.max()


def _case(data_dir: Path, case: str) -> pd.DataFrame:
    first, last = _span(data_dir)
    hour = pd.Timedelta(hours=1)
    next_day = last.floor("D") + pd.Timedelta(days=1)
    if case == "new_day":  # incl. the first interaction of an item that had none
        times = [next_day + k * hour for k in range(6)]
        return _events(data_dir, times, ["a_user0"] * 3 + ["b_user1"] * 3, ["a1", "a2", "c0"] * 2)
    if case == "same_day":  # the day of the newest stored event, before and after it
        times = [last - 2 * hour, last + pd.Timedelta(seconds=1), last.floor("D")]
        return _events(data_dir, times, ["a_user3", "b_user3", "a_user4"], ["a5", "b6", "a7"])
    if case == "late":  # weeks back, and before the first stored event (moves items' times)
        times = [first - pd.Timedelta(days=3), first + pd.Timedelta(days=10), last - 40 * 24 * hour]
        return _events(data_dir, times, ["a_user5", "b_user5", "b_user6"], ["a8", "b9", "c0"])
    if case == "new_users":
        times = [last + hour, last + 2 * hour, last - 5 * 24 * hour]
        return _events(data_dir, times, ["newbie", "newbie", "other"], ["a1", "b2", "a3"])
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["new_day", "same_day", "late", "new_users"])
def test_incremental_ingest_equals_full_rebuild(data_dir: Path, tmp_path: Path, case: str) -> None:
    new = _case(data_dir, case)
    _rebuild(data_dir, new, tmp_path / "rebuilt")
    counts = append_interactions(new, data_dir, batch_rows=97)  # many batches, odd size
    assert counts.new_rows == len(new)
    _assert_same_tables(data_dir, tmp_path / "rebuilt")
    genres = read_table(data_dir, "items").set_index("item_id")["genres"]
    assert list(genres["a0"]) == ["Action", "Comedy"]  # list columns survive the round trip


def test_rows_already_stored_are_not_added_again(data_dir: Path, tmp_path: Path) -> None:
    """A run killed after the tables were written but before the watermark moved reads the
    same events again: nothing changes. Rows identical to stored ones count once too."""
    stored = read_table(data_dir, "interactions").head(3)
    again = stored.rename(columns={"event_timestamp": "timestamp"})
    new = pd.concat([_case(data_dir, "new_day"), again], ignore_index=True)
    _rebuild(data_dir, new, tmp_path / "rebuilt")
    assert append_interactions(new, data_dir, batch_rows=50).new_rows == len(new) - 3
    _assert_same_tables(data_dir, tmp_path / "rebuilt")
    before = {n: (data_dir / f"{n}.parquet").stat().st_mtime_ns for n in TABLES}
    counts = append_interactions(new, data_dir)
    assert counts.new_rows == 0
    assert counts.total_rows == len(read_table(data_dir, "interactions"))
    assert {n: (data_dir / f"{n}.parquet").stat().st_mtime_ns for n in TABLES} == before
    _assert_same_tables(data_dir, tmp_path / "rebuilt")


def test_a_crash_between_the_renames_is_repaired_by_running_again(
    data_dir: Path, tmp_path: Path
) -> None:
    """The derived tables were replaced but ``interactions`` (renamed last) was not: the
    same events are new again and every table ends up as the full rebuild."""
    new = _case(data_dir, "late")
    _rebuild(data_dir, new, tmp_path / "rebuilt")
    old_interactions = (data_dir / "interactions.parquet").read_bytes()
    append_interactions(new, data_dir)
    (data_dir / "interactions.parquet").write_bytes(old_interactions)
    assert append_interactions(new, data_dir).new_rows == len(new)
    _assert_same_tables(data_dir, tmp_path / "rebuilt")


def test_an_unknown_item_fails_before_anything_is_written(data_dir: Path) -> None:
    before = {n: (data_dir / f"{n}.parquet").read_bytes() for n in TABLES}
    new = _case(data_dir, "new_day").assign(item_id="nope")
    with pytest.raises(InvalidDataset, match="missing from items: nope"):
        append_interactions(new, data_dir)
    assert {n: (data_dir / f"{n}.parquet").read_bytes() for n in TABLES} == before
    assert sorted(p.name for p in data_dir.glob(".*tmp*")) == []


@pytest.mark.parametrize("days_back", [0, 3, 29, 30, 31, 45, 200])
def test_rows_since_a_day_equal_the_full_snapshots_from_that_day(days_back: int) -> None:
    """Folding the days before the window, and keeping only each user's last ``n`` events
    before ``since``, changes no row from ``since`` on (half-star ratings, ties in time)."""
    rng = np.random.default_rng(days_back)
    start = pd.Timestamp("2025-01-01", tz="UTC")
    n = 600
    raw = pd.DataFrame(
        {
            "user_id": rng.choice(["u1", "u2", "u3", "u4"], n),
            "item_id": rng.choice([f"i{k}" for k in range(30)], n),
            "rating": rng.integers(1, 11, n) / 2,
            "timestamp": start + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h"),
        }
    )
    inter = canonical_interactions(raw)
    since = inter["event_timestamp"].max().floor("D") + pd.Timedelta(days=1 - days_back)
    for key in ("user_id", "item_id"):
        full = activity_snapshots(inter, key)
        want = full[full["event_timestamp"] >= since].reset_index(drop=True)
        got = snapshots_since(daily_counts(inter, key), key, since)
        assert len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    full = recent_items_snapshots(inter, n=4)
    want = full[full["event_timestamp"] >= since].reset_index(drop=True)
    pd.testing.assert_frame_equal(recent_items_since(inter, since, n=4), want)
