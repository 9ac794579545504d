"""The ranker's feature matrix from online values, in the shape the online store is read in
(:class:`recommender.featurestore.layout.FeastLayout` decodes one HMGET into
``{view: {feature: value, "_ts": time}}``). Pure; the caller reads Redis.

Values are converted to numbers once per entity (:func:`entity_values`), not once per
candidate pair: serving holds every item's ``item_stats`` and ``item_metadata`` numbers in
memory (refreshed with the catalog) and converts the user's ``user_activity`` and
``user_profile`` from the request's HMGET; the nightly job takes the latest snapshot rows of
every user at once (:func:`latest_values`, what materialization puts online).
:func:`online_matrix` then takes each pair's user and item numbers and hands them to
:func:`recommender.ranking.features.matrix_from_values`, the function training rows from
Feast go through as well (a test checks both give identical vectors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recommender.featurestore.names import feature_column
from recommender.ranking.candidates import CandidateSet
from recommender.ranking.features import (
    FEAST_COLUMNS,
    FEAST_FEATURES,
    USER_VIEWS,
    Genres,
    fractional_year,
    matrix_from_values,
    numeric_column,
    numeric_values,
)

ViewValues = Mapping[str, object]
EntityViews = Mapping[str, Mapping[str, ViewValues]]  # entity id -> view -> values

USER_FEATURES = tuple((v, f) for v, f in FEAST_FEATURES if v in USER_VIEWS)
ITEM_FEATURES = tuple((v, f) for v, f in FEAST_FEATURES if v not in USER_VIEWS)
USER_COLUMNS = tuple(feature_column(v, f) for v, f in USER_FEATURES)
ITEM_COLUMNS = tuple(feature_column(v, f) for v, f in ITEM_FEATURES)
# FEAST_COLUMNS' order in (USER_COLUMNS + ITEM_COLUMNS)
_FEAST_ORDER = np.array([(*USER_COLUMNS, *ITEM_COLUMNS).index(c) for c in FEAST_COLUMNS])


def entity_values(views: EntityViews, ids: Sequence[str] | np.ndarray, user: bool) -> np.ndarray:
    """(len(ids), columns) float64: each entity's decoded online views as the ranker's
    numbers (:data:`USER_COLUMNS` or :data:`ITEM_COLUMNS`; NaN where a view or value is
    missing), in the order of ``ids``."""
    wanted = USER_FEATURES if user else ITEM_FEATURES
    columns = USER_COLUMNS if user else ITEM_COLUMNS
    found = [views.get(str(entity)) or {} for entity in ids]
    out = np.empty((len(found), len(columns)), dtype=np.float64)
    for j, ((view, feature), column) in enumerate(zip(wanted, columns, strict=True)):
        out[:, j] = numeric_values(column, [(f.get(view) or {}).get(feature) for f in found])
    return out


def online_matrix(
    cands: CandidateSet,
    user_values: np.ndarray,
    item_values: np.ndarray,
    as_of: pd.Timestamp,
    user_genres: np.ndarray,
    genres: Genres,
) -> np.ndarray:
    """The ranker's input for ``cands`` from per-entity numbers: ``user_values`` (one row per
    user position of the history block, :data:`USER_COLUMNS`), ``item_values`` (one row per
    item row of the model, :data:`ITEM_COLUMNS`), all as of ``as_of``."""
    both = np.concatenate([user_values[cands.user_pos], item_values[cands.item_rows]], axis=1)
    feast = both[:, _FEAST_ORDER]
    year_now = float(fractional_year(pd.Timestamp(as_of))[0])
    return matrix_from_values(cands, feast, year_now, user_genres, genres)


def latest_values(
    tables: Mapping[str, pd.DataFrame], key: str, views: Mapping[str, str], ids: Sequence[str]
) -> np.ndarray:
    """What :func:`entity_values` gives on the online store after materialization, from the
    offline tables' latest row per entity, for many entities at once (the nightly job):
    ``views`` maps a view name to its table in ``tables``; ``key`` is ``user_id`` (user
    columns) or ``item_id`` (item columns).

    Example: ``latest_values(tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY}, ["u1"])``.
    """
    user = key == "user_id"
    wanted = USER_FEATURES if user else ITEM_FEATURES
    index = pd.Index([str(i) for i in ids])
    frame = pd.DataFrame(index=index)
    for view, table_name in views.items():
        features = [f for v, f in wanted if v == view]
        table = tables[table_name]
        table = table[table[key].astype(str).isin(index)]
        last = table.sort_values("event_timestamp", kind="stable").groupby(key).tail(1)
        last = last.set_index(last[key].astype(str))[features].reindex(index)
        for feature in features:
            frame[feature_column(view, feature)] = last[feature].to_numpy()
    columns = USER_COLUMNS if user else ITEM_COLUMNS
    for column in columns:
        if column not in frame:
            frame[column] = None
    frame = frame.reset_index(drop=True)
    return np.stack([numeric_column(frame, c) for c in columns], axis=1)
