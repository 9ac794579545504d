"""The ranker's feature rows from online values, in the shape the online store is read in
(:class:`recommender.featurestore.layout.FeastLayout` decodes one HMGET into
``{view: {feature: value, "_ts": time}}``). Pure; the caller reads Redis.

Serving holds every item's ``item_stats`` and ``item_metadata`` in memory (refreshed with the
catalog) and reads the user's ``user_activity`` and ``user_profile`` with the request's HMGET;
the nightly job can pass the latest snapshot rows the same way. Both then go through
:func:`recommender.ranking.features.feature_matrix`, like training rows from Feast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recommender.featurestore.names import feature_column
from recommender.ranking.candidates import CandidateSet
from recommender.ranking.dataset import KEYS, ROW
from recommender.ranking.features import FEAST_FEATURES, USER_VIEWS

ViewValues = Mapping[str, object]
EntityViews = Mapping[str, Mapping[str, ViewValues]]  # entity id -> view -> values


def _flat(views: Mapping[str, ViewValues], wanted: list[tuple[str, str]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for view, feature in wanted:
        values = views.get(view) or {}
        out[feature_column(view, feature)] = values.get(feature)
    return out


def item_frame(items: EntityViews, ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
    """Item features held in memory: one row per item id (in the order of ``ids``, the
    model's item rows, when given), the ranker's item columns."""
    wanted = [(v, f) for v, f in FEAST_FEATURES if v not in USER_VIEWS]
    columns = [feature_column(v, f) for v, f in wanted]
    rows = {item_id: _flat(views, wanted) for item_id, views in items.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    return frame if ids is None else frame.reindex(list(ids))


def online_rows(
    cands: CandidateSet,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    users: EntityViews,
    items: pd.DataFrame,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Feature rows for ``cands`` (as :class:`recommender.ranking.dataset.FeatureReader`
    returns them) from users' decoded online views and the in-memory :func:`item_frame`,
    aligned with ``item_ids`` (row i describes item row i)."""
    if len(items) != len(item_ids) or not np.array_equal(items.index.to_numpy(), item_ids):
        raise ValueError("the item frame must be aligned with the item vocabulary")
    wanted = [(v, f) for v, f in FEAST_FEATURES if v in USER_VIEWS]
    uid = np.asarray(user_ids)[cands.user_pos]
    iid = np.asarray(item_ids)[cands.item_rows]
    user_frame = pd.DataFrame.from_dict(
        {u: _flat(users.get(u) or {}, wanted) for u in np.unique(uid).tolist()},
        orient="index",
        columns=[feature_column(v, f) for v, f in wanted],
    )
    out = pd.DataFrame(
        {
            ROW: np.arange(len(cands)),
            "user_id": uid,
            "item_id": iid,
            "event_timestamp": pd.Series(pd.Timestamp(as_of), index=range(len(cands))),
        }
    )
    user_part = user_frame.reindex(uid).reset_index(drop=True)
    item_part = items.iloc[cands.item_rows].reset_index(drop=True)
    return pd.concat([out[list(KEYS)], user_part, item_part], axis=1)


def latest_views(
    tables: Mapping[str, pd.DataFrame], key: str, views: Mapping[str, str], ids: Sequence[str]
) -> dict[str, dict[str, dict[str, object]]]:
    """The decoded-view shape from the offline tables' latest row per entity (what the online
    store holds after materialization), for the nightly job: ``views`` maps a view name to
    its table in ``tables``; only the features the ranker reads are kept.

    Example: ``latest_views(tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY}, ["u1"])``.
    """
    wanted = set(ids)
    out: dict[str, dict[str, dict[str, object]]] = {i: {} for i in ids}
    for view, table_name in views.items():
        features = [f for v, f in FEAST_FEATURES if v == view]
        table = tables[table_name]
        table = table[table[key].isin(wanted)].sort_values("event_timestamp", kind="stable")
        last = table.groupby(key).tail(1).set_index(key)
        for entity, values in last[features].to_dict("index").items():
            out[str(entity)][view] = values
    return out
