"""Reading a prometheus_client histogram in a test."""

from __future__ import annotations

from prometheus_client import Histogram


def count_and_sum(histogram: Histogram) -> tuple[float, float]:
    """How many observations a histogram has had, and their sum."""
    got = {s.name.rsplit("_", 1)[-1]: s.value for s in next(iter(histogram.collect())).samples}
    return got["count"], got["sum"]
