"""The drift monitor's I/O edge: which lists it reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.data.lists import published_dir
from recommender.lifecycle.drift import list_drift
from recommender.lifecycle.monitor import read_run, run_users


def test_the_monitor_reads_one_seeded_sample_of_users_from_both_runs(tmp_path: Path) -> None:
    """A run's lists are read for a sample of users only (filtered while reading), and the
    previous run is read for the same users, so overlap still compares like with like."""
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(500)]
    for run in ("r1", "r2"):
        folder = published_dir(tmp_path) / run
        folder.mkdir(parents=True)
        order = rng.permutation(len(users))  # rows in another order in each run
        pq.write_table(
            pa.table(
                {
                    "user_id": [users[i] for i in order],
                    "rec_item_ids": [[f"i{i}", f"j{i}"] for i in order],
                    "rec_scores": [[2.0, 1.0]] * len(users),
                }
            ),
            folder / "part-0.parquet",
        )
    sample = run_users(tmp_path, "r2", 50, seed=3)
    assert sample is not None and len(set(sample.to_pylist())) == 50
    assert sample.equals(run_users(tmp_path, "r2", 50, seed=3))  # seeded
    now, before = read_run(tmp_path, "r2", sample), read_run(tmp_path, "r1", sample)
    assert now is not None and before is not None
    assert set(now["user_id"]) == set(before["user_id"]) == set(sample.to_pylist())
    out = list_drift(now, before, n_items=1000, k=2)
    assert out["overlap_users"] == 50 and out["overlap_previous"] == 1.0
    every = run_users(tmp_path, "r1", 10_000, seed=3)
    assert every is not None and len(every) == 500
    assert read_run(tmp_path, "nope", sample) is None and run_users(tmp_path, "nope", 5, 0) is None
