"""The latest row per key, streamed from parquet, equals pandas' stable sort then tail(1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.data.latest import latest_positions, read_latest
from recommender.errors import InvalidDataset


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 5, n)  # few distinct times: many ties
    return pd.DataFrame(
        {
            "user_id": [f"u{k}" for k in rng.integers(0, 40, n)],
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(days, "D"),
            "value": np.arange(n, dtype=np.int64),  # the row's position: which row was kept
            "lists": [[f"i{j}" for j in range(k % 4)] for k in range(n)],
        }
    )


def test_ties_go_to_the_last_row_in_the_file() -> None:
    keys = pa.array(["a", "b", "a", "a", "b", "c"])
    stamps = pa.array([2, 1, 3, 3, 0, 5])
    # a: rows 2 and 3 share the latest time, the later row wins; b: row 1; c: row 5
    np.testing.assert_array_equal(latest_positions(keys, stamps), [1, 3, 5])
    assert len(latest_positions(pa.array([], pa.string()), pa.array([], pa.int64()))) == 0


@pytest.mark.parametrize("batch_rows", [7, 1 << 16])
def test_read_latest_equals_sort_then_tail(tmp_path: Path, batch_rows: int) -> None:
    frame = _table(500, seed=5)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=64)
    got = read_latest(tmp_path, "t", "user_id", ["value", "lists"], batch_rows=batch_rows)
    assert got.column_names == ["user_id", "value", "lists"]  # only what was asked
    want = frame.sort_values("event_timestamp", kind="stable").groupby("user_id").tail(1)
    want = want.sort_values("value").reset_index(drop=True)
    assert got["value"].to_pylist() == want["value"].tolist()  # file order
    assert got["user_id"].to_pylist() == want["user_id"].tolist()
    assert got["lists"].to_pylist() == [list(x) for x in want["lists"]]


def test_read_latest_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataset, match="does not exist"):
        read_latest(tmp_path, "none", "user_id", [])
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(_table(10, 1), preserve_index=False), path)
    with pytest.raises(InvalidDataset, match="no column"):
        read_latest(tmp_path, "t", "user_id", ["nope"])
    empty = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_pandas(_table(0, 1), preserve_index=False), empty)
    got = read_latest(tmp_path, "e", "user_id", ["value"])
    assert got.num_rows == 0 and got.column_names == ["user_id", "value"]
