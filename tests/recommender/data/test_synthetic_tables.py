"""Synthetic tables built by helper processes equal the ones built in one process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recommender.data.synthetic import synthetic_items, synthetic_user_chunks
from recommender.data.synthetic_tables import SyntheticSpec, write_synthetic
from recommender.data.tables import read_table, write_tables_chunked
from tests.recommender.data.test_tables import KEYS


def test_helper_processes_write_the_same_tables_as_one_process(tmp_path: Path) -> None:
    spec = SyntheticSpec(230, 400, 3000, n_genres=6, days=30, seed=4, chunk_users=50)
    assert spec.blocks == 5
    one, two = tmp_path / "one", tmp_path / "two"
    catalog = synthetic_items(400, n_genres=6, seed=4)
    chunks = synthetic_user_chunks(catalog, 230, 3000, days=30, seed=4, chunk_users=50)
    counts = write_tables_chunked(catalog.items, chunks, one)
    assert write_synthetic(spec, two, workers=2) == counts
    for name in KEYS:
        pd.testing.assert_frame_equal(read_table(two, name), read_table(one, name))
