"""Point-in-time training rows for the ranker: (user, candidate item, timestamp) entity rows,
their features as Feast knew them at that timestamp, and labels from the window after it.

Two readers answer the same question, "these entity rows' features, point in time":
:class:`FeastReader` asks Feast's ``get_historical_features`` (the training job, with the
``ranker_features_v1`` service); :class:`TableReader` does the same as-of join in memory over
the snapshot tables (:mod:`recommender.data.snapshots`) for offline evaluation on datasets that
have no feature repository. A test checks they return identical rows. Only ``FeastReader``
does I/O (through the store it is given).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from feast import FeatureStore

from recommender.data.vocab import Vocab
from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    RANKER_SERVICE,
    USER_ACTIVITY,
    USER_PROFILE,
    feature_column,
)
from recommender.ranking.candidates import CandidateSet
from recommender.ranking.features import FEAST_FEATURES, USER_VIEWS

ROW = "_row"  # carried through the join: Feast does not keep the entity rows' order


class FeatureReader(Protocol):
    """Point-in-time features for entity rows (``user_id, item_id, event_timestamp``)."""

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame: ...


def entity_rows(
    cands: CandidateSet, user_ids: np.ndarray, item_ids: np.ndarray, as_of: pd.Timestamp
) -> pd.DataFrame:
    """One entity row per candidate pair, stamped ``as_of``, in the candidates' order."""
    return pd.DataFrame(
        {
            ROW: np.arange(len(cands)),
            "user_id": np.asarray(user_ids)[cands.user_pos],
            "item_id": np.asarray(item_ids)[cands.item_rows],
            "event_timestamp": pd.Series(pd.Timestamp(as_of), index=range(len(cands))),
        }
    )


KEYS = (ROW, "user_id", "item_id", "event_timestamp")


def _complete(entity_df: pd.DataFrame, joined: pd.DataFrame) -> pd.DataFrame:
    """Every entity row, in the entity frame's order, with its features (NaN where a view has
    no row yet). Feast's file offline store drops an entity row that no view has a row for."""
    features = joined.drop(columns=[c for c in KEYS[1:] if c in joined.columns])
    out = entity_df[list(KEYS)].merge(features, on=ROW, how="left", validate="one_to_one")
    return out.reset_index(drop=True)


def _utc_ns(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


@dataclass
class FeastReader:
    """``get_historical_features`` with the ranker's feature service, full feature names.

    User views and item views are asked for separately, each with its distinct (key, time)
    rows, then joined back onto the pairs: Feast's file offline store keeps one row per
    (view's join key, timestamp), so many (user, item) pairs of one user at one time would
    lose all but one of their rows; and a user's features are the same for all their items.
    """

    store: FeatureStore

    def _refs(self) -> tuple[list[str], list[str]]:
        service = self.store.get_feature_service(RANKER_SERVICE)
        user: list[str] = []
        item: list[str] = []
        for projection in service.feature_view_projections:
            refs = [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
            (user if projection.name in USER_VIEWS else item).extend(refs)
        return user, item

    def _join(self, entity_df: pd.DataFrame, key: str, refs: list[str]) -> pd.DataFrame:
        rows = entity_df[[key, "event_timestamp"]].drop_duplicates(ignore_index=True)
        got = self.store.get_historical_features(
            entity_df=rows, features=refs, full_feature_names=True
        ).to_df()
        got["event_timestamp"] = _utc_ns(got["event_timestamp"])
        return got.drop_duplicates([key, "event_timestamp"])

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        user_refs, item_refs = self._refs()
        out = entity_df[list(KEYS)].assign(event_timestamp=_utc_ns(entity_df["event_timestamp"]))
        for key, refs in (("user_id", user_refs), ("item_id", item_refs)):
            out = out.merge(self._join(out, key, refs), on=[key, "event_timestamp"], how="left")
        return _complete(entity_df, out)  # keys and times as the caller sent them


class TableReader:
    """The same as-of join over in-memory snapshot tables (latest row at or before each entity
    row's timestamp; every view the ranker reads has ``ttl=0``, so no row is too old).

    ``tables``: the :func:`recommender.data.tables.build_tables` output (``users``, ``items``,
    ``user_activity``, ``item_stats``).
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        wanted: dict[str, list[str]] = {}
        for view, feature in FEAST_FEATURES:
            wanted.setdefault(view, []).append(feature)
        sources = {
            USER_ACTIVITY: (tables[USER_ACTIVITY], "user_id"),
            USER_PROFILE: (tables["users"], "user_id"),
            ITEM_STATS: (tables[ITEM_STATS], "item_id"),
            ITEM_METADATA: (tables["items"], "item_id"),
        }
        self.views: dict[str, tuple[pd.DataFrame, str]] = {}
        for view, features in wanted.items():
            table, key = sources[view]
            renamed = {f: feature_column(view, f) for f in features}
            frame = table[[key, "event_timestamp", *features]].rename(columns=renamed)
            frame = frame.rename(columns={"event_timestamp": "_ts"})
            frame["_ts"] = _utc_ns(frame["_ts"])
            frame = frame.sort_values("_ts")
            self.views[view] = (frame.reset_index(drop=True), key)

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        out = entity_df.assign(event_timestamp=_utc_ns(entity_df["event_timestamp"]))
        out = out.sort_values("event_timestamp", kind="stable")
        for frame, key in self.views.values():
            out = pd.merge_asof(
                out,
                frame,
                left_on="event_timestamp",
                right_on="_ts",
                by=key,
                direction="backward",
                allow_exact_matches=True,
            ).drop(columns="_ts")
        return _complete(entity_df, out)


def labels(
    cands: CandidateSet,
    user_ids: Iterable[str],
    items: Vocab,
    future: pd.DataFrame,
) -> np.ndarray:
    """1 for a candidate the user interacted with in ``future`` (the label window), else 0.
    ``user_ids``: the block's users (distinct), by ``cands.user_pos``; ``items``: the
    catalog, by ``cands.item_rows``."""
    n_items = max(len(items), 1)
    u = Vocab.from_ids(user_ids).rows(future["user_id"].astype(str))
    i = items.rows(future["item_id"].astype(str))
    ok = (u >= 0) & (i >= 0)
    hit = u[ok] * n_items + i[ok]
    pairs = cands.user_pos.astype(np.int64) * n_items + cands.item_rows
    return np.isin(pairs, hit).astype(np.int32)
