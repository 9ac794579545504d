"""Writing the tables one block of users at a time gives exactly the tables built at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from recommender.data.synthetic import synthetic_items, synthetic_user_chunks
from recommender.data.tables import (
    _item_stats_parts,
    block_tables,
    build_tables,
    item_vocabulary,
    read_table,
    write_tables_chunked,
)
from recommender.errors import InvalidDataset
from recommender.featurestore import names

KEYS = {
    "interactions": ["user_id", "item_id", "event_timestamp"],
    "users": ["user_id"],
    "items": ["item_id"],
    names.USER_ACTIVITY: ["user_id", "event_timestamp"],
    names.ITEM_STATS: ["item_id", "event_timestamp"],
    names.USER_RECENT_ITEMS: ["user_id", "event_timestamp"],
}


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_chunked_tables_equal_the_tables_built_at_once(tmp_path: Path) -> None:
    catalog = synthetic_items(300, n_genres=5, seed=3)
    chunks = list(synthetic_user_chunks(catalog, 250, 4000, days=40, seed=3, chunk_users=60))
    assert len(chunks) == 5
    counts = write_tables_chunked(catalog.items, iter(chunks), tmp_path)
    whole = build_tables(
        pd.concat([c[0] for c in chunks], ignore_index=True),
        pd.concat([c[1] for c in chunks], ignore_index=True),
        catalog.items,
    )
    for name, keys in KEYS.items():
        got = _sorted(read_table(tmp_path, name), keys)
        want = _sorted(whole[name], keys)
        assert counts[name] == len(want), name
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-5)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_the_same_seed_gives_the_same_users_and_blocks_differ() -> None:
    catalog = synthetic_items(2000, seed=1)
    a = list(synthetic_user_chunks(catalog, 120, 2000, seed=1, chunk_users=50))
    b = list(synthetic_user_chunks(catalog, 120, 2000, seed=1, chunk_users=50))
    assert all(x[0].equals(y[0]) for x, y in zip(a, b, strict=True))
    assert set(a[0][1]["user_id"]).isdisjoint(a[1][1]["user_id"])
    total = sum(len(c[0]) for c in a)
    assert 1200 < total < 2800  # close to the asked-for 2000 (duplicates dropped)


def test_an_unknown_item_fails_and_leaves_the_old_tables(tmp_path: Path) -> None:
    catalog = synthetic_items(50, seed=2)
    good = list(synthetic_user_chunks(catalog, 40, 400, seed=2, chunk_users=40))
    write_tables_chunked(catalog.items, iter(good), tmp_path)
    before = read_table(tmp_path, "interactions")
    bad_inter = good[0][0].assign(item_id="nope")
    with pytest.raises(InvalidDataset, match="missing from items"):
        write_tables_chunked(catalog.items, iter([(bad_inter, good[0][1])]), tmp_path)
    pd.testing.assert_frame_equal(read_table(tmp_path, "interactions"), before)
    assert not list(tmp_path.glob(".*tmp*"))


def test_item_stats_in_small_parts_equal_item_stats_in_one() -> None:
    catalog = synthetic_items(60, n_genres=4, seed=5)
    inter, users = next(synthetic_user_chunks(catalog, 80, 1500, days=50, seed=5))
    item_ids = item_vocabulary(catalog.items)
    daily = block_tables(inter, users, item_ids).daily
    whole = pa.concat_tables(_item_stats_parts(daily, item_ids, rows=10**9)).to_pandas()
    parts = list(_item_stats_parts(daily, item_ids, rows=37))
    assert len(parts) > 5
    pd.testing.assert_frame_equal(pa.concat_tables(parts).to_pandas(), whole)
    want = build_tables(inter, users, catalog.items)[names.ITEM_STATS]
    pd.testing.assert_frame_equal(whole, want, check_dtype=False)
