"""Memory budgets: a step that would exceed the machine's memory stops first, with a message
naming the setting to lower, instead of being killed by the kernel's OOM killer."""

from __future__ import annotations

from pathlib import Path

from recommender.errors import MemoryBudgetExceeded

# Of the memory available when a step starts, the share it may plan to use: the rest is for
# Redis, the API and the other processes of the machine.
DEFAULT_SHARE = 0.7


def available_mb(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """``MemAvailable`` in MB, or None where the kernel does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def budget_mb(configured: float | None) -> float | None:
    """The configured budget, else :data:`DEFAULT_SHARE` of the memory available now."""
    if configured:
        return float(configured)
    free = available_mb()
    return free * DEFAULT_SHARE if free is not None else None


def check(need_mb: float, configured: float | None, what: str, setting: str) -> None:
    """Raise :class:`MemoryBudgetExceeded` when ``need_mb`` is over the budget.

    Example: ``check(9000, 8000, "scoring a batch", "RECO_BATCH_SIZE")`` raises, naming
    ``RECO_BATCH_SIZE``."""
    budget = budget_mb(configured)
    if budget is not None and need_mb > budget:
        raise MemoryBudgetExceeded(
            f"{what} needs about {need_mb:,.0f} MB, more than its budget of {budget:,.0f} MB; "
            f"lower {setting} (or raise the budget if the machine has the memory)"
        )
