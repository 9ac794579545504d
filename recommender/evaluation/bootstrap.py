"""Paired bootstrap intervals of metric differences between two models on the same users.

Users are resampled with replacement (seeded); each resample's mean difference forms the
distribution whose 2.5% and 97.5% quantiles are the 95% interval. Paired: both models' values
of a resampled user move together, so the interval is about the difference, not each mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """Mean difference ``a - b`` and its bootstrap interval."""

    a: str
    b: str
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    ratio: float  # mean_a / mean_b
    users: int
    excludes_zero: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def paired_bootstrap(
    values_a: np.ndarray,
    values_b: np.ndarray,
    a: str = "a",
    b: str = "b",
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval of ``mean(values_a - values_b)`` over users resampled with replacement.

    Example: identical arrays give diff 0 with the interval [0, 0] (not excluding zero).
    """
    va, vb = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if va.shape != vb.shape or va.ndim != 1 or not len(va):
        raise ValueError("two non-empty per-user arrays of the same length are needed")
    diff = va - vb
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    block = max(1, min(500, 2_000_000 // len(diff)))  # resamples at a time: ~16 MB of indices
    for start in range(0, resamples, block):  # bounded memory for many users
        stop = min(resamples, start + block)
        idx = rng.integers(0, len(diff), size=(stop - start, len(diff)))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    mean_b = float(vb.mean())
    return Interval(
        a=a,
        b=b,
        mean_a=float(va.mean()),
        mean_b=mean_b,
        diff=float(diff.mean()),
        low=float(low),
        high=float(high),
        ratio=float(va.mean() / mean_b) if mean_b > 0 else float("inf"),
        users=len(diff),
        excludes_zero=bool(low > 0 or high < 0),
    )
