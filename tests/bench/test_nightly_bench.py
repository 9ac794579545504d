"""The scale benchmark, small: every step of the night runs to completion and the checks hold
(both nights publish every user, the first backfills every view, the second ingests the day's
events and continues incrementally). Completion and correctness, not time: the timings are the
benchmark's business (docs/benchmarks.md). Runs the benchmark in a subprocess, with a
redis-server of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.repo import ROOT, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed"),
]
STEPS = (
    "data",
    "feast_apply",
    "train",
    "night_1",
    "events",
    "night_2",
    "feast_materialize_incremental",
    "feast_materialize_full",
    "api_start",
)


def test_the_night_at_small_scale_completes_and_checks_out(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "bench.nightly_bench", "--sizes", "3000", "--items", "1500"]
    cmd += ["--work", str(tmp_path / "work"), "--out", str(out), "--docs", ""]
    cmd += ["--redis-port", str(free_port()), "--api-port", str(free_port())]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    size = json.loads(out.read_text())["sizes"]["3000"]
    assert all(size[step]["seconds"] >= 0 for step in STEPS), size
    assert size["checks"] and all(size["checks"].values()), size["checks"]
    assert size["events"]["events"] == 3000 * 20 // 180
    assert not (tmp_path / "work" / "3000").exists()  # the work folder is removed
