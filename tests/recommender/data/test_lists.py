"""The offline lists table: one chunk's lists with their source masks, and parts written
before the source columns existed brought to the current schema."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.data.lists import (
    RECOMMENDATIONS_SCHEMA,
    ensure_table,
    lists_table,
    published_dir,
    upgrade_parts,
)

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
ITEMS = np.array(["i0", "i1", "i2"])


def test_lists_keep_each_items_source_mask_and_drop_padding() -> None:
    rows = np.array([[2, 0, -1], [-1, -1, -1]])
    scores = np.array([[0.9, 0.5, -np.inf], [-np.inf] * 3], np.float32)
    masks = np.array([[3, 4, 0], [0, 0, 0]], np.uint8)
    table = lists_table(
        np.array(["u1", "u2"]), rows, scores, ITEMS, "v1", "r1", NOW, masks, ("als", "ease", "knn")
    )
    assert table.schema == RECOMMENDATIONS_SCHEMA
    got = table.to_pylist()
    assert got[0]["rec_item_ids"] == ["i2", "i0"] and got[0]["rec_sources"] == [3, 4]
    assert got[1]["rec_item_ids"] == [] and got[1]["rec_sources"] == []
    assert {r["rec_source_names"] for r in got} == {"als,ease,knn"}
    plain = lists_table(np.array(["u1", "u2"]), rows, scores, ITEMS, "v1", "r1", NOW).to_pylist()
    assert [r["rec_sources"] for r in plain] == [[], []]
    assert {r["rec_source_names"] for r in plain} == {"als"}


def test_parts_from_before_the_source_columns_are_upgraded_once(tmp_path: Path) -> None:
    old_schema = pa.schema([f for f in RECOMMENDATIONS_SCHEMA if not f.name.startswith("rec_so")])
    run = published_dir(tmp_path) / "20260101T000000Z-old"
    run.mkdir(parents=True)
    rows = np.array([[1, 0]])
    old = lists_table(np.array(["u1"]), rows, np.ones((1, 2), np.float32), ITEMS, "v0", "old", NOW)
    pq.write_table(old.select(old_schema.names).cast(old_schema), run / "part-00000.parquet")
    ensure_table(tmp_path)
    table = pq.read_table(run / "part-00000.parquet")
    assert table.schema == RECOMMENDATIONS_SCHEMA
    assert (
        table.to_pylist()[0] | {"rec_sources": [], "rec_source_names": ""} == (table.to_pylist()[0])
    )
    assert table["rec_item_ids"].to_pylist() == [["i1", "i0"]]
    assert upgrade_parts(tmp_path) == []  # nothing left to do
    assert not list(run.glob(".*tmp*"))
