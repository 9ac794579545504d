"""Memory budgets: the check that stops a step before the OOM killer would."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender import membudget
from recommender.errors import MemoryBudgetExceeded


def test_over_the_configured_budget_raises_naming_the_setting() -> None:
    with pytest.raises(MemoryBudgetExceeded, match="lower RECO_BATCH_SIZE") as info:
        membudget.check(9000, 8000, "scoring a batch", "RECO_BATCH_SIZE")
    assert "9,000 MB" in str(info.value) and "8,000 MB" in str(info.value)
    membudget.check(7999, 8000, "scoring a batch", "RECO_BATCH_SIZE")  # under: no error


def test_the_default_budget_is_a_share_of_the_available_memory(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   10240000 kB\n")
    assert membudget.available_mb(meminfo) == 10000
    assert membudget.available_mb(tmp_path / "missing") is None
    assert membudget.budget_mb(500) == 500
    free = membudget.available_mb()
    assert free is not None and membudget.budget_mb(None) == pytest.approx(
        free * membudget.DEFAULT_SHARE, rel=0.2
    )
