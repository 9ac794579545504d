"""Attribution joins events to exposures; the rest is kept with a reason."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest

from recommender.lifecycle.attribution import attribute, unattributed_counts, variant_table

T0 = pd.Timestamp("2026-11-01T12:00:00Z")


def _exposures() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("r1", T0, "u1", "e", "control", "v1", "precomputed", ["i1", "i2"]),
            ("r2", T0, "u2", "e", "canary", "v2", "realtime", ["i3", "i4"]),
            ("r3", T0, "u3", "e", "canary", "v2", "realtime", ["i5"]),
        ],
        columns=[
            "recommendation_id", "ts", "user_id", "experiment", "variant", "model_version",
            "source", "item_ids",
        ],
    )  # fmt: skip


def _events(rows: list[tuple[str | None, str, str, str, pd.Timestamp]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["recommendation_id", "user_id", "item_id", "event_type", "event_timestamp"]
    )


def test_events_are_attributed_or_kept_with_a_reason() -> None:
    events = _events(
        [
            ("r1", "u1", "i2", "click", T0 + timedelta(minutes=3)),  # attributed
            ("r2", "u2", "i3", "purchase", T0 + timedelta(hours=2)),  # attributed
            ("nope", "u1", "i1", "click", T0),  # unknown id
            ("r1", "u1", "i1", "click", T0 + timedelta(days=2)),  # expired
            ("r1", "u9", "i1", "click", T0),  # somebody else's id
            ("r3", "u3", "i9", "click", T0),  # not an item it showed
            (None, "u1", "i1", "click", T0),  # no id at all
        ]
    )
    out = attribute(_exposures(), events, timedelta(hours=24))
    assert len(out) == len(events)  # nothing dropped
    assert out["attributed"].tolist() == [True, True, False, False, False, False, False]
    assert out["variant"].tolist()[:2] == ["control", "canary"]
    assert out["unattributed"].tolist()[2:] == [
        "unknown", "expired", "other_user", "item_not_shown", "no_id",
    ]  # fmt: skip
    assert unattributed_counts(out) == {
        "unknown": 1, "expired": 1, "other_user": 1, "item_not_shown": 1, "no_id": 1,
    }  # fmt: skip


def test_variant_table_counts_and_statistics(rng: np.random.Generator) -> None:
    # 400 users per variant, one exposure each; control users click with 10%, canary with 20%
    rows, events = [], []
    for variant, rate in (("control", 0.10), ("canary", 0.20)):
        for u in range(400):
            rid = f"{variant}{u}"
            rows.append((rid, T0, f"{variant}_u{u}", "e", variant, "v", "realtime", ["i1"]))
            if rng.random() < rate:
                events.append((rid, f"{variant}_u{u}", "i1", "click", T0 + timedelta(minutes=1)))
    exposures = pd.DataFrame(rows, columns=_exposures().columns)
    attributed = attribute(exposures, _events(events), timedelta(hours=1))
    table = variant_table(exposures, attributed, "control").set_index("variant")
    clicks = [int(table.loc[v, "users_clicked"]) for v in ("canary", "control")]
    assert table.loc["control", "exposures"] == 400 and sum(clicks) == len(events)
    assert table.loc["canary", "ctr"] == pytest.approx(clicks[0] / 400)
    assert (
        table.loc["canary", "ctr_lo"] < table.loc["canary", "ctr"] < table.loc["canary", "ctr_hi"]
    )
    p = proportions_ztest(clicks, [400, 400])[1]
    assert table.loc["canary", "p_value"] == pytest.approx(p)
    assert table.loc["canary", "p_value"] < 0.01  # a doubled click rate on 400 users shows
    assert table.loc["canary", "diff_lo"] > 0
    assert np.isnan(table.loc["control", "p_value"])
