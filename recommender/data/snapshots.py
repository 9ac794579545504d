"""Point-in-time feature tables derived from interactions (pure functions).

Snapshots are stamped at UTC day boundaries and computed only from events strictly before
their timestamp, so a point-in-time join (latest snapshot at or before an entity row's
timestamp) can never leak an event that happened after that row.

A snapshot row is emitted at every boundary where a value can change: the day after each
active day, and the day after an active day leaves the trailing window. Between two rows the
values are constant, so the table is exact yet sparse.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)


def _day_boundary_after(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("D") + DAY


def _activity_columns(window_days: int, prefix: str) -> list[str]:
    w = f"{window_days}d"
    return [
        f"{prefix}interactions_{w}",
        f"{prefix}mean_rating_{w}",
        f"{prefix}interactions_total",
        f"{prefix}mean_rating_total",
    ]


def activity_snapshots(
    interactions: pd.DataFrame, key: str, window_days: int = 30, prefix: str = ""
) -> pd.DataFrame:
    """Counts and mean ratings per ``key`` over the trailing window and all time.

    Returns columns ``key, event_timestamp, {prefix}interactions_{w}d, {prefix}mean_rating_{w}d,
    {prefix}interactions_total, {prefix}mean_rating_total`` (mean is 0.0 when the count is 0).

    Example: one event on 2020-01-01 12:00 gives a row at 2020-01-02 00:00 with count 1 and a
    row at 2020-01-31 00:00 where the 30-day count is back to 0.
    """
    if interactions.empty:
        cols = _activity_columns(window_days, prefix)
        return pd.DataFrame(columns=[key, "event_timestamp", *cols])
    return snapshots_from_daily(daily_counts(interactions, key), key, window_days, prefix)


def daily_counts(interactions: pd.DataFrame, key: str) -> pd.DataFrame:
    """Events per ``key`` and day boundary: ``key, day, n, s`` (count and rating sum). Partial
    results of disjoint parts of the interactions add up (:func:`add_daily`), so a table too
    big for memory is counted one chunk at a time."""
    return (
        interactions.assign(day=_day_boundary_after(interactions["event_timestamp"]))
        .groupby([key, "day"], sort=True, observed=True)["rating"]
        .agg(n="size", s="sum")
        .reset_index()
    )


def add_daily(parts: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """The daily counts of the union of the parts' interactions."""
    both = pd.concat(parts, ignore_index=True)
    return both.groupby([key, "day"], sort=True, observed=True)[["n", "s"]].sum().reset_index()


def snapshots_from_daily(
    daily: pd.DataFrame, key: str, window_days: int = 30, prefix: str = ""
) -> pd.DataFrame:
    """:func:`activity_snapshots` from the daily counts (:func:`daily_counts` or
    :func:`add_daily`, sorted by ``key, day``)."""
    cols = _activity_columns(window_days, prefix)
    if daily.empty:
        return pd.DataFrame(columns=[key, "event_timestamp", *cols])
    # daily_counts and add_daily both return it sorted by (key, day), as the cumsums need
    daily["cum_n"] = daily.groupby(key)["n"].cumsum()
    daily["cum_s"] = daily.groupby(key)["s"].cumsum()
    cum = daily[[key, "day", "cum_n", "cum_s"]].sort_values("day")

    window = pd.Timedelta(days=window_days)
    points = pd.concat([daily[[key, "day"]], daily[[key, "day"]].assign(day=daily["day"] + window)])
    points = points.drop_duplicates().rename(columns={"day": "event_timestamp"})
    points = points.sort_values("event_timestamp").reset_index(drop=True)

    def cumulative_at(times: pd.Series) -> pd.DataFrame:
        """Cumulative count/sum of events with day-boundary <= times (i.e. events < times)."""
        probe = pd.DataFrame({key: points[key], "t": times}).reset_index()
        probe = probe.sort_values("t")
        merged = pd.merge_asof(probe, cum, left_on="t", right_on="day", by=key)
        merged = merged.set_index("index").sort_index()
        return merged[["cum_n", "cum_s"]].fillna(0.0)

    total = cumulative_at(points["event_timestamp"])
    before_window = cumulative_at(points["event_timestamp"] - window)
    n_total = total["cum_n"].to_numpy()
    s_total = total["cum_s"].to_numpy()
    n_win = n_total - before_window["cum_n"].to_numpy()
    s_win = s_total - before_window["cum_s"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = points.assign(
            **{
                cols[0]: n_win.astype("int64"),
                cols[1]: np.where(n_win > 0, s_win / np.maximum(n_win, 1), 0.0).astype("float32"),
                cols[2]: n_total.astype("int64"),
                cols[3]: np.where(n_total > 0, s_total / np.maximum(n_total, 1), 0.0).astype(
                    "float32"
                ),
            }
        )
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    return out.sort_values([key, "event_timestamp"]).reset_index(drop=True)


def recent_items_snapshots(interactions: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The last ``n`` item ids of each user (newest first) as of each day boundary.

    This is the batch side of the ``user_events`` push source: the real-time path pushes the
    same shape for users the nightly model has never seen.
    """
    cols = ["user_id", "event_timestamp", "recent_item_ids"]
    if interactions.empty:
        return pd.DataFrame(columns=cols)
    df = interactions.sort_values(["user_id", "event_timestamp"], kind="stable")
    day = _day_boundary_after(df["event_timestamp"]).to_numpy()
    users = df["user_id"].to_numpy()
    items = df["item_id"].to_numpy()
    # last row of every (user, day) run
    last = np.ones(len(df), dtype=bool)
    last[:-1] = (users[1:] != users[:-1]) | (day[1:] != day[:-1])
    user_start = np.zeros(len(df), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    user_start[starts] = starts
    user_start = np.maximum.accumulate(user_start)
    rows = np.flatnonzero(last)
    lists = [items[max(user_start[i], i - n + 1) : i + 1][::-1].tolist() for i in rows]
    out = pd.DataFrame(
        {"user_id": users[rows], "event_timestamp": day[rows], "recent_item_ids": lists}
    )
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    return out


def snapshots_since(
    daily: pd.DataFrame, key: str, since: pd.Timestamp, window_days: int = 30, prefix: str = ""
) -> pd.DataFrame:
    """The rows of :func:`snapshots_from_daily` at or after ``since``, in time that grows with
    the days after ``since - window`` only: the days before that are folded into one day (their
    sums), which changes neither the totals nor any window from ``since`` on, and whose own
    rows fall before ``since``.

    Example: the update of a table after new events from day ``since - 1 day`` on.
    """
    window = pd.Timedelta(days=window_days)
    early = daily["day"] < since - window
    folded = daily[early].groupby(key, sort=False, observed=True)[["n", "s"]].sum().reset_index()
    folded["day"] = since - window - DAY
    both = pd.concat([folded[[key, "day", "n", "s"]], daily.loc[~early, [key, "day", "n", "s"]]])
    both = both.sort_values([key, "day"], kind="stable").reset_index(drop=True)
    out = snapshots_from_daily(both, key, window_days, prefix)
    return out[out["event_timestamp"] >= since].reset_index(drop=True)


def recent_items_since(
    interactions: pd.DataFrame, since: pd.Timestamp, n: int = 20
) -> pd.DataFrame:
    """The rows of :func:`recent_items_snapshots` at or after ``since`` (a day boundary), from
    the events of the days that end at or after it plus each user's ``n`` events before them."""
    after = _day_boundary_after(interactions["event_timestamp"]) >= since
    before = interactions[~after].groupby("user_id", sort=False).tail(n)
    kept = interactions[after | interactions.index.isin(before.index)]
    out = recent_items_snapshots(kept, n=n)
    return out[out["event_timestamp"] >= since].reset_index(drop=True)
