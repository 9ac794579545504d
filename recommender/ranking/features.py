"""The ranker's feature vector, computed by one function from Feast rows. Pure.

Training feeds :func:`feature_matrix` the rows of ``get_historical_features`` (the offline
store, point in time); serving feeds :func:`matrix_from_values`, which both share, the same
columns read from the online store (user features from the request's HMGET, item features
held in memory with the catalog), converted to numbers once per entity by the same
:func:`numeric_column` (:mod:`recommender.ranking.onlinerows`). The columns are Feast's full
feature names (``user_activity__interactions_30d``), listed once in :data:`FEAST_FEATURES`; a
test checks both paths give identical vectors.

Features, in order: per retriever its score, rank (NaN: not proposed) and score standardised
over the user's candidates, then the Feast
user and item features, then cross features (``derived``): how many retrievers proposed the
item, the item's age at the row's time, its 30-day trend, the user's affinity to its genres,
and the gap between the item's and the user's mean rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    feature_column,
)
from recommender.models.csr_arrays import row_entries
from recommender.ranking.candidates import CandidateSet

_ACTIVITY = ("interactions_30d", "mean_rating_30d", "interactions_total", "mean_rating_total")
# (view, feature): what the ranker reads from Feast (the ``ranker_features_v1`` service)
FEAST_FEATURES: tuple[tuple[str, str], ...] = (
    *((USER_ACTIVITY, f) for f in _ACTIVITY),
    (USER_PROFILE, "age"),
    (USER_PROFILE, "gender"),
    *((ITEM_STATS, f) for f in _ACTIVITY),
    (ITEM_METADATA, "year"),
)
USER_VIEWS = (USER_ACTIVITY, USER_PROFILE)
FEAST_COLUMNS = tuple(feature_column(v, f) for v, f in FEAST_FEATURES)
DERIVED = ("n_retrievers", "item_age_years", "item_trend", "genre_affinity", "rating_gap")
GENDER_CODES = {"M": 1.0, "F": 0.0}


@dataclass(frozen=True)
class FeatureSpec:
    """One column of the ranker's input: its name, kind and (for Feast ones) ``view:feature``."""

    name: str
    kind: str  # "retriever", "feast" or "derived"
    feast: str | None = None


def feature_specs(retrievers: Sequence[str]) -> list[FeatureSpec]:
    """The ranker's columns for these retrievers, in the order of :func:`feature_matrix`."""
    specs = [
        FeatureSpec(f"{r}_{x}", "retriever") for r in retrievers for x in ("score", "rank", "z")
    ]
    specs += [FeatureSpec(feature_column(v, f), "feast", f"{v}:{f}") for v, f in FEAST_FEATURES]
    return specs + [FeatureSpec(name, "derived") for name in DERIVED]


@dataclass(frozen=True)
class Genres:
    """Items x genres (binary), from ``item_metadata.genres``, rows as the model's items."""

    names: tuple[str, ...]
    matrix: csr_matrix

    @classmethod
    def from_lists(cls, genre_lists: Sequence[Sequence[str] | None]) -> Genres:
        lists = [list(g) if g is not None else [] for g in genre_lists]
        names = tuple(sorted({g for gs in lists for g in gs}))
        index = {g: j for j, g in enumerate(names)}
        rows = np.repeat(np.arange(len(lists)), [len(gs) for gs in lists])
        cols = np.array([index[g] for gs in lists for g in gs], dtype=np.int64)
        data = np.ones(len(cols), dtype=np.float32)
        return cls(names, csr_matrix((data, (rows, cols)), shape=(len(lists), len(names))))


def user_genre_shares(history: csr_matrix, genres: Genres) -> np.ndarray:
    """Per user, the share of their items that carry each genre (users x genres).

    From the CSR arrays (each positive entry's item's genres counted per user): a request's
    one row paid more in scipy's product and constructors than in the counting."""
    if not history.has_canonical_format:  # duplicates summed first, as (history > 0) does
        history = history.copy()
        history.sum_duplicates()
    n_users, n_genres = history.shape[0], len(genres.names)
    positive = history.data > 0
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(history.indptr))[positive]
    g = genres.matrix
    owner, entry = row_entries(g.indptr, history.indices[positive].astype(np.int64))
    keys = users[owner] * n_genres + g.indices[entry]
    per_genre = np.bincount(keys, g.data[entry], minlength=n_users * n_genres)
    n_items = np.bincount(users, minlength=n_users).astype(np.float32)[:, None]
    return per_genre.reshape(n_users, n_genres).astype(np.float32) / np.maximum(n_items, 1.0)


# entries of one pass of per_user_z's temporaries (~8 MB per float64 array)
Z_PASS_ENTRIES = 1 << 20


def per_user_z(scores: np.ndarray, user_pos: np.ndarray) -> np.ndarray:
    """Each score standardised over its user's candidates (NaN stays NaN): the raw scales of
    a retriever differ from user to user, the position within the user's set does not.
    Every (user, retriever) is one bin of the same bincounts (sums in pair order, as a loop
    over retrievers adds them); as many retrievers per pass as keep the temporaries near
    :data:`Z_PASS_ENTRIES` (a request's: all at once; a training block's: one at a time)."""
    out = np.full(scores.shape, np.nan, dtype=np.float64)
    if not len(scores):
        return out
    step = max(1, Z_PASS_ENTRIES // len(scores))
    for j in range(0, scores.shape[1], step):
        out[:, j : j + step] = _z_pass(scores[:, j : j + step], np.asarray(user_pos, np.int64))
    return out


def _z_pass(scores: np.ndarray, user_pos: np.ndarray) -> np.ndarray:
    out = np.full(scores.shape, np.nan, dtype=np.float64)
    n_bins = (int(user_pos.max()) + 1) * scores.shape[1]
    s = scores.astype(np.float64)
    ok = np.isfinite(s)
    bins = (user_pos[:, None] * scores.shape[1] + np.arange(s.shape[1]))[ok]
    values = s[ok]
    count = np.maximum(np.bincount(bins, minlength=n_bins), 1)
    dev = values - (np.bincount(bins, values, minlength=n_bins) / count)[bins]
    std = np.sqrt(np.bincount(bins, dev**2, minlength=n_bins) / count)
    out[ok] = dev / np.where(std > 0, std, 1.0)[bins]
    return out


def numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """One Feast column as float64 (gender coded, strings parsed, NaN where missing): the
    one conversion both paths use, per pair for Feast's rows, per entity for online values."""
    values = frame[column]
    if column == feature_column(USER_PROFILE, "gender"):
        return values.map(GENDER_CODES).to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(values.dtype):  # Feast's offline rows: no parsing needed
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)


def numeric_values(column: str, values: Sequence[object]) -> np.ndarray:
    """:func:`numeric_column` of a column given as a list (decoded online values): the same
    numbers, without a DataFrame when every value is already a number or missing (a request's
    one user: the pandas round trip was a fifth of the two-stage path)."""
    if column == feature_column(USER_PROFILE, "gender"):
        return np.array(
            [GENDER_CODES.get(v, np.nan) if isinstance(v, str) else np.nan for v in values],
            dtype=np.float64,
        )
    numbers: list[float] = []
    for v in values:
        if v is None:
            numbers.append(np.nan)
        elif isinstance(v, (bool, int, float, np.number)):
            numbers.append(float(v))
        else:  # a string or anything else: pandas' parsing, as for Feast's rows
            return numeric_column(pd.DataFrame({column: list(values)}), column)
    return np.array(numbers, dtype=np.float64)


def fractional_year(when: pd.Series | pd.Timestamp) -> np.ndarray:
    """Year plus day-of-year / 365.25 in UTC (the item's age is this minus its release year);
    one value for a single time (a request's), one per row for a column."""
    if isinstance(when, pd.Timestamp):
        stamp = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        return np.array([stamp.year + stamp.dayofyear / 365.25], dtype=np.float64)
    stamps = pd.to_datetime(when, utc=True)
    return (stamps.dt.year + stamps.dt.dayofyear / 365.25).to_numpy(dtype=np.float64)


def feature_matrix(
    cands: CandidateSet,
    rows: pd.DataFrame,
    user_genres: np.ndarray,
    genres: Genres,
    retriever_cols: np.ndarray | None = None,
) -> np.ndarray:
    """The ranker's input, one row per candidate pair (columns as :func:`feature_specs`).

    ``rows``: one row per pair, in the candidate set's order, with :data:`FEAST_COLUMNS` and
    ``event_timestamp`` (the time the features are as of); ``user_genres``: the
    :func:`user_genre_shares` of the history block the candidates came from;
    ``retriever_cols``: :func:`retriever_columns`, when computed on a larger set than
    ``cands`` (training keeps a sample of each user's candidates, standardised over all).

    Example: ``feature_matrix(cands, feast_rows, shares, genres).shape == (len(cands), F)``.
    """
    if len(rows) != len(cands):
        raise ValueError(f"{len(rows)} feature rows for {len(cands)} candidates")
    missing = [c for c in (*FEAST_COLUMNS, "event_timestamp") if c not in rows.columns]
    if missing:
        raise ValueError(f"feature rows lack columns {missing}")
    feast = np.stack([numeric_column(rows, c) for c in FEAST_COLUMNS], axis=1)
    return matrix_from_values(
        cands, feast, fractional_year(rows["event_timestamp"]), user_genres, genres, retriever_cols
    )


def _genre_match(
    item_genres: csr_matrix, item_rows: np.ndarray, user_genres: np.ndarray, user_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the item's genre count and the sum of the user's shares of those genres,
    from the CSR arrays directly (no sparse row slicing: a request's few hundred pairs paid
    more in scipy's constructors than in the arithmetic)."""
    pair, entry = row_entries(item_genres.indptr, item_rows)
    data = item_genres.data[entry].astype(np.float64)
    taste = user_genres[user_pos[pair], item_genres.indices[entry]]
    n = np.bincount(pair, data, minlength=len(item_rows))
    return n, np.bincount(pair, data * taste, minlength=len(item_rows))


def retriever_columns(cands: CandidateSet) -> np.ndarray:
    """The retriever part of the ranker's input: per retriever its score, rank and score
    standardised over the user's candidates (so it depends on the whole candidate set)."""
    rets = np.empty((len(cands), 3 * len(cands.retrievers)), dtype=np.float64)
    rets[:, 0::3], rets[:, 1::3] = cands.scores, cands.ranks
    rets[:, 2::3] = per_user_z(cands.scores, cands.user_pos)
    return rets


def matrix_from_values(
    cands: CandidateSet,
    feast: np.ndarray,
    year_now: np.ndarray | float,
    user_genres: np.ndarray,
    genres: Genres,
    retriever_cols: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`feature_matrix` from its numbers: ``feast`` (pairs x :data:`FEAST_COLUMNS`,
    :func:`numeric_column` values) and ``year_now`` (:func:`fractional_year` of each pair's
    time, or one for all)."""
    rets = retriever_columns(cands) if retriever_cols is None else retriever_cols
    if len(rets) != len(cands):
        raise ValueError(f"{len(rets)} retriever rows for {len(cands)} candidates")
    col = {c: j for j, c in enumerate(FEAST_COLUMNS)}
    item_30d = feast[:, col[feature_column(ITEM_STATS, "interactions_30d")]]
    item_total = feast[:, col[feature_column(ITEM_STATS, "interactions_total")]]
    n_genres, shares = _genre_match(genres.matrix, cands.item_rows, user_genres, cands.user_pos)
    derived = np.stack(
        [
            cands.proposed.sum(axis=1).astype(np.float64),
            year_now - feast[:, col[feature_column(ITEM_METADATA, "year")]],
            np.nan_to_num(item_30d) / np.maximum(np.nan_to_num(item_total), 1.0),
            np.where(n_genres > 0, shares / np.maximum(n_genres, 1.0), np.nan),
            feast[:, col[feature_column(ITEM_STATS, "mean_rating_total")]]
            - feast[:, col[feature_column(USER_ACTIVITY, "mean_rating_total")]],
        ],
        axis=1,
    )
    return np.concatenate([rets, feast, derived], axis=1)
