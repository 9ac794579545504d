"""Drift, without I/O: of features (a recent sample against the training snapshot) and of the
recommendations themselves (one run against the previous one).

* Features: PSI on the training snapshot's deciles (categories for strings) and the
  two-sample Kolmogorov-Smirnov test (scipy) for numbers.
* Lists: catalog coverage of the top-k, the Gini index of item exposure (popularity
  concentration), score quantiles, KS between two runs' scores, and the mean overlap of a
  user's top-k with the previous run's.

:func:`verdict` turns a report into reasons a run is suspicious (they block promotion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

EPS = 1e-4


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (0: same; > 0.25 is
    usually read as a major shift). Numbers use ``expected``'s quantile bins; anything else
    its categories (unseen categories share one bin)."""
    expected, actual = expected.dropna(), actual.dropna()
    if expected.empty or actual.empty:
        return float("nan")
    if pd.api.types.is_numeric_dtype(expected) and pd.api.types.is_numeric_dtype(actual):
        edges = np.unique(np.quantile(expected.astype(float), np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        edges[0], edges[-1] = -np.inf, np.inf
        e = np.histogram(expected.astype(float), edges)[0]
        a = np.histogram(actual.astype(float), edges)[0]
    else:
        cats = pd.Index(expected.astype(str).unique())
        e = expected.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy()
        a_counts = actual.astype(str).value_counts()
        a = np.append(
            a_counts.reindex(cats, fill_value=0).to_numpy(),
            a_counts.drop(cats, errors="ignore").sum(),
        )
        e = np.append(e, 0)
    p = np.maximum(e / e.sum(), EPS)
    q = np.maximum(a / a.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_drift(
    train: pd.DataFrame, recent: pd.DataFrame, features: Sequence[str]
) -> pd.DataFrame:
    """One row per feature: PSI, KS statistic and p-value (numbers only), means and sizes."""
    rows = []
    for name in features:
        e, a = train[name].dropna(), recent[name].dropna()
        numeric = pd.api.types.is_numeric_dtype(e) and pd.api.types.is_numeric_dtype(a)
        row: dict[str, Any] = {
            "feature": name,
            "kind": "numeric" if numeric else "categorical",
            "psi": psi(e, a),
            "n_train": len(e),
            "n_recent": len(a),
        }
        if numeric and len(e) and len(a):
            test = stats.ks_2samp(e.astype(float), a.astype(float))
            row.update(
                ks=float(test.statistic),
                ks_pvalue=float(test.pvalue),
                train_mean=float(e.mean()),
                recent_mean=float(a.mean()),
            )
        rows.append(row)
    cols = [
        "feature",
        "kind",
        "psi",
        "ks",
        "ks_pvalue",
        "train_mean",
        "recent_mean",
        "n_train",
        "n_recent",
    ]
    return pd.DataFrame(rows).reindex(columns=cols)


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts (0: every item equally exposed; 1: one item only)."""
    x = np.sort(np.asarray(counts, dtype=float))
    if x.size == 0 or x.sum() == 0:
        return 0.0
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def list_stats(lists: pd.DataFrame, n_items: int, k: int = 10) -> dict[str, float]:
    """Figures of one run's lists (``rec_item_ids``, ``rec_scores`` per user): coverage of
    the catalog by everyone's top-k, Gini of top-k exposure over the whole catalog, and score
    quantiles."""
    top = [np.asarray(ids[:k]) for ids in lists["rec_item_ids"]]
    flat = np.concatenate(top) if top else np.array([], dtype=object)
    flat = flat[flat != ""] if flat.size else flat
    counts = pd.Series(flat).value_counts().to_numpy()
    exposure = np.concatenate([counts, np.zeros(max(0, n_items - counts.size))])
    scores = (
        np.concatenate([np.asarray(s[:k], dtype=float) for s in lists["rec_scores"]])
        if len(lists)
        else np.array([])
    )
    scores = scores[np.isfinite(scores)]
    q = np.quantile(scores, [0.05, 0.5, 0.95]) if scores.size else [np.nan] * 3
    return {
        "users": float(len(lists)),
        "coverage": float(counts.size / n_items) if n_items else 0.0,
        "gini": gini(exposure),
        "score_p05": float(q[0]),
        "score_p50": float(q[1]),
        "score_p95": float(q[2]),
    }


def top_k_scores(lists: pd.DataFrame, k: int = 10) -> np.ndarray:
    if not len(lists):
        return np.array([])
    scores = np.concatenate([np.asarray(s[:k], dtype=float) for s in lists["rec_scores"]])
    return scores[np.isfinite(scores)]


def overlap(current: pd.DataFrame, previous: pd.DataFrame, k: int = 10) -> tuple[float, int]:
    """Mean |top-k now ∩ top-k before| / k over users in both runs, and how many users."""
    prev = dict(zip(previous["user_id"], previous["rec_item_ids"], strict=True))
    shares = []
    for user, ids in zip(current["user_id"], current["rec_item_ids"], strict=True):
        before = prev.get(user)
        if before is not None:
            a, b = set(list(ids)[:k]) - {""}, set(list(before)[:k]) - {""}
            shares.append(len(a & b) / k)
    return (float(np.mean(shares)) if shares else float("nan")), len(shares)


def list_drift(
    current: pd.DataFrame, previous: pd.DataFrame | None, n_items: int, k: int = 10
) -> dict[str, float]:
    """:func:`list_stats` of ``current``, and its changes against ``previous`` (if any)."""
    out = list_stats(current, n_items, k)
    if previous is not None and len(previous):
        before = list_stats(previous, n_items, k)
        share, users = overlap(current, previous, k)
        a, b = top_k_scores(current, k), top_k_scores(previous, k)
        out.update(
            overlap_previous=share,
            overlap_users=float(users),
            coverage_previous=before["coverage"],
            gini_previous=before["gini"],
            score_ks=float(stats.ks_2samp(a, b).statistic) if a.size and b.size else float("nan"),
        )
    return out


@dataclass(frozen=True)
class Thresholds:
    """What makes a run suspicious (settings ``RECO_DRIFT_*``)."""

    max_psi: float = 0.25
    min_overlap: float = 0.2
    max_coverage_drop: float = 0.5  # relative to the previous run
    max_gini: float = 0.95

    def verdict(
        self, features: pd.DataFrame | None, lists: Mapping[str, float] | None
    ) -> list[str]:
        reasons = []
        if features is not None:
            for row in features.itertuples():
                if np.isfinite(row.psi) and row.psi > self.max_psi:
                    reasons.append(f"feature {row.feature}: PSI {row.psi:.3f} > {self.max_psi}")
        if lists:
            share = lists.get("overlap_previous", float("nan"))
            if np.isfinite(share) and share < self.min_overlap:
                reasons.append(
                    f"top-10 overlap with the previous run {share:.3f} < {self.min_overlap}"
                )
            before = lists.get("coverage_previous")
            if before and lists["coverage"] < before * (1 - self.max_coverage_drop):
                reasons.append(
                    f"catalog coverage fell from {before:.3f} to {lists['coverage']:.3f} "
                    f"(more than {self.max_coverage_drop:.0%})"
                )
            if lists.get("gini", 0.0) > self.max_gini:
                reasons.append(f"exposure Gini {lists['gini']:.3f} > {self.max_gini}")
        return reasons
