"""Attribution of events to exposures, and the per-variant experiment table (pure).

An event is attributed to the exposure whose ``recommendation_id`` it carries when that
exposure exists, belongs to the same user, recommended the event's item, and the event came
within the attribution window after it. Every other event is kept, with the reason it was not
attributed (``unknown``, ``expired``, ``other_user``, ``item_not_shown``, ``no_id``).

Statistics are statsmodels': Wilson intervals per variant, and against the control a
two-proportion z-test and a Newcombe interval of the difference. The unit is the *user* (the
unit of randomisation, so observations are independent); exposure-level click-through is
shown beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

CLICKS = ("click",)
CONVERSIONS = ("purchase", "like")
CLOCK_SKEW = timedelta(seconds=5)
EXPOSURE_COLUMNS = [
    "recommendation_id",
    "ts",
    "user_id",
    "experiment",
    "variant",
    "model_version",
    "source",
    "item_ids",
]


def attribute(exposures: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """``events`` with ``experiment``, ``variant``, ``attributed`` and ``unattributed``."""
    exp = exposures.drop_duplicates("recommendation_id").set_index("recommendation_id")
    rid = events.get("recommendation_id", pd.Series(None, index=events.index, dtype=object))
    out = events.copy()
    out["recommendation_id"] = rid
    known = rid.isin(exp.index)
    joined = exp.reindex(rid.where(known))
    joined.index = events.index
    shown = [
        bool(k) and item in set(items)
        for k, item, items in zip(
            known, events["item_id"], joined["item_ids"].fillna("").map(list), strict=True
        )
    ]
    ts = pd.to_datetime(joined["ts"], utc=True)
    in_window = (events["event_timestamp"] >= ts - CLOCK_SKEW) & (
        events["event_timestamp"] <= ts + window
    )
    reason = np.select(
        [
            rid.isna(),
            ~known,
            joined["user_id"].astype(object) != events["user_id"].astype(object),
            ~in_window,
            ~np.asarray(shown),
        ],
        ["no_id", "unknown", "other_user", "expired", "item_not_shown"],
        default="",
    )
    out["attributed"] = reason == ""
    out["unattributed"] = pd.Series(reason, index=events.index).replace("", None)
    out["experiment"] = joined["experiment"].where(out["attributed"])
    out["variant"] = joined["variant"].where(out["attributed"])
    return out


def _rate(count: int, nobs: int) -> tuple[float, float, float]:
    if nobs == 0:
        return float("nan"), float("nan"), float("nan")
    lo, hi = proportion_confint(count, nobs, alpha=0.05, method="wilson")
    return count / nobs, float(lo), float(hi)


def variant_table(
    exposures: pd.DataFrame,
    attributed: pd.DataFrame,
    control: str,
    clicks: Sequence[str] = CLICKS,
    conversions: Sequence[str] = CONVERSIONS,
) -> pd.DataFrame:
    """One row per variant: exposures, users, click-through (per exposure and per user) and
    conversion (per user) with 95% Wilson intervals; for every variant but ``control``, the
    user click-rate difference with its interval and the z-test's p-value."""
    good = attributed[attributed["attributed"]]
    clicked = set(good.loc[good["event_type"].isin(clicks), "recommendation_id"])
    converted = set(good.loc[good["event_type"].isin(conversions), "recommendation_id"])
    exp = exposures.assign(
        clicked=exposures["recommendation_id"].isin(clicked),
        converted=exposures["recommendation_id"].isin(converted),
    )
    per_user = exp.groupby(["variant", "user_id"])[["clicked", "converted"]].any().reset_index()
    rows = []
    for name, group in exp.groupby("variant", sort=False):
        users = per_user[per_user["variant"] == name]
        ctr, ctr_lo, ctr_hi = _rate(int(group["clicked"].sum()), len(group))
        ucr, ucr_lo, ucr_hi = _rate(int(users["clicked"].sum()), len(users))
        cvr, cvr_lo, cvr_hi = _rate(int(users["converted"].sum()), len(users))
        rows.append(
            {
                "variant": name,
                "exposures": len(group),
                "users": len(users),
                "clicked_exposures": int(group["clicked"].sum()),
                "ctr": ctr,
                "ctr_lo": ctr_lo,
                "ctr_hi": ctr_hi,
                "users_clicked": int(users["clicked"].sum()),
                "user_ctr": ucr,
                "user_ctr_lo": ucr_lo,
                "user_ctr_hi": ucr_hi,
                "users_converted": int(users["converted"].sum()),
                "conversion": cvr,
                "conversion_lo": cvr_lo,
                "conversion_hi": cvr_hi,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty or control not in set(table["variant"]):
        return table
    base = table.set_index("variant").loc[control]
    for col in ("diff_vs_control", "diff_lo", "diff_hi", "p_value"):
        table[col] = np.nan
    for i, row in table.iterrows():
        if row["variant"] == control or row["users"] == 0 or base["users"] == 0:
            continue
        count = np.array([row["users_clicked"], base["users_clicked"]])
        nobs = np.array([row["users"], base["users"]])
        if count.sum() in (0, nobs.sum()):  # no variance: the test is undefined
            p = 1.0
        else:
            p = float(proportions_ztest(count, nobs)[1])
        lo, hi = confint_proportions_2indep(
            count[0], nobs[0], count[1], nobs[1], method="newcomb", compare="diff"
        )
        table.loc[i, ["diff_vs_control", "diff_lo", "diff_hi", "p_value"]] = [
            row["user_ctr"] - base["user_ctr"],
            float(lo),
            float(hi),
            p,
        ]
    return table


def unattributed_counts(attributed: pd.DataFrame) -> dict[str, int]:
    counts = attributed["unattributed"].dropna().value_counts()
    return {str(k): int(v) for k, v in counts.items()}
