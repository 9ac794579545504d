"""Validate and coerce raw tables into the canonical schema.

Canonical tables (all ids are strings, all timestamps tz-aware UTC):

* interactions: ``user_id, item_id, rating (float32), event_timestamp``
* users: ``user_id, age (Int64), gender, occupation, zip_code, event_timestamp``
* items: ``item_id, title, year (Int64), genres (list[str]), available (bool), event_timestamp``

Every problem raises :class:`~recommender.errors.InvalidDataset` naming the column, before
anything is written.

Ids follow the one id rule of :mod:`recommender.data.ids`, for users and items alike and in
every table: 1-128 characters without control characters, the whitespace around an id removed
(with one warning per column counting the ids that changed and those that then equal another
spelling, whose rows merge). In the users and items tables, two rows whose ids differ only by
that whitespace are a duplicate id.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.data.ids import clean_ids
from recommender.errors import InvalidDataset

log = logging.getLogger(__name__)

USER_PROFILE_COLUMNS = ("age", "gender", "occupation", "zip_code")
TIMESTAMP_ALIASES = ("event_timestamp", "timestamp")


def _require(df: pd.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidDataset(
            f"{table}: missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(map(repr, df.columns))}"
        )


def _ids(df: pd.DataFrame, table: str, column: str) -> pd.Series:
    values = df[column]
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise InvalidDataset(f"{table}: column {column!r} has an empty value at row {row}")
    if pd.api.types.is_float_dtype(values):
        if not (values == values.round()).all():
            raise InvalidDataset(f"{table}: column {column!r} must hold ids, found fractions")
        values = values.astype("int64")
    try:  # strings already: straight to Arrow (10x a per-value str/strip in Python)
        arr = pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(values.astype(str).to_numpy(), type=pa.string())
    arr = clean_ids(arr, table, column)
    return pd.Series(arr.to_numpy(zero_copy_only=False), index=values.index, name=column)


def _numeric(df: pd.DataFrame, table: str, column: str, strict: bool = True) -> pd.Series:
    """Numeric column; ``strict=False`` (optional metadata) turns bad values into NA, warning."""
    coerced = pd.to_numeric(df[column], errors="coerce")
    bad = coerced.isna() & df[column].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        if not strict:
            log.warning(
                "%s: %d non-numeric value(s) in optional column %r set to null (e.g. %r at row %d)",
                table,
                int(bad.sum()),
                column,
                df[column].iloc[row],
                row,
            )
            return coerced
        raise InvalidDataset(
            f"{table}: column {column!r} must be numeric; got {df[column].iloc[row]!r} at row {row}"
        )
    return coerced


def _timestamps(df: pd.DataFrame, table: str, column: str) -> pd.Series:
    raw = df[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = pd.to_datetime(raw, utc=True)
    elif pd.api.types.is_numeric_dtype(raw):
        ts = pd.to_datetime(raw, unit="s", utc=True, errors="coerce")
    else:
        numeric = pd.to_numeric(raw, errors="coerce")
        if numeric.notna().all():
            ts = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
        else:
            ts = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    bad = ts.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InvalidDataset(
            f"{table}: column {column!r} must be a timestamp (epoch seconds or ISO 8601); "
            f"got {raw.iloc[row]!r} at row {row}"
        )
    return ts.astype("datetime64[ns, UTC]")


def _timestamp_column(df: pd.DataFrame) -> str | None:
    return next((c for c in TIMESTAMP_ALIASES if c in df.columns), None)


def canonical_interactions(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a raw interactions table; ``rating`` defaults to 1.0 (implicit feedback).

    Example: ``canonical_interactions(pd.DataFrame({"user_id": [1], "item_id": [2],
    "timestamp": [0]}))`` has ``rating == 1.0`` and a UTC ``event_timestamp``.
    """
    table = "interactions"
    ts_col = _timestamp_column(df)
    _require(df, table, ("user_id", "item_id", ts_col or "timestamp"))
    if df.empty:
        raise InvalidDataset(f"{table}: the table has no rows")
    out = pd.DataFrame(
        {
            "user_id": _ids(df, table, "user_id"),
            "item_id": _ids(df, table, "item_id"),
            "rating": _numeric(df, table, "rating").fillna(1.0) if "rating" in df else 1.0,
            "event_timestamp": _timestamps(df, table, ts_col),  # type: ignore[arg-type]
        }
    )
    out["rating"] = out["rating"].astype("float32")
    return out.take(_time_order(out)).reset_index(drop=True)


def _time_order(inter: pd.DataFrame) -> np.ndarray:
    """Row order by ``(event_timestamp, user_id, item_id)``, stable: one Arrow sort (pandas'
    sort by the string columns was the costliest step of an ingest)."""
    keys = pa.table(
        {
            "t": pd.DatetimeIndex(inter["event_timestamp"]).asi8,
            "u": pa.array(inter["user_id"].to_numpy(), type=pa.string()),
            "i": pa.array(inter["item_id"].to_numpy(), type=pa.string()),
        }
    )
    order = pc.sort_indices(
        keys, sort_keys=[("t", "ascending"), ("u", "ascending"), ("i", "ascending")]
    )
    return order.to_numpy()


def _entity_table(
    df: pd.DataFrame | None, interactions: pd.DataFrame, table: str, key: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(raw table, output frame with unique ``key`` ids, first interaction per id)."""
    first_seen = interactions.groupby(key)["event_timestamp"].min()
    if df is None:
        df = pd.DataFrame({key: first_seen.index})
    _require(df, table, (key,))
    out = pd.DataFrame({key: _ids(df, table, key)})
    if out[key].duplicated().any():
        dup = out.loc[out[key].duplicated(), key].iloc[0]
        rows = np.flatnonzero((out[key] == dup).to_numpy())[:2]
        spellings = df[key].iloc[rows].astype(str)
        said = ""
        if spellings.nunique() > 1:  # the same id once the whitespace around it is removed
            said = f" (rows {rows[0]} and {rows[1]}: {', '.join(map(repr, spellings))})"
        raise InvalidDataset(f"{table}: column {key!r} has duplicate id {dup!r}{said}")
    return df, out, first_seen


def _optional_int(df: pd.DataFrame, table: str, column: str) -> pd.Series:
    if column not in df:
        return pd.Series(pd.NA, index=df.index, dtype="Int64")
    return _numeric(df, table, column, strict=False).round().astype("Int64")


def canonical_users(df: pd.DataFrame | None, interactions: pd.DataFrame) -> pd.DataFrame:
    """Coerce a users table (or derive an empty-profile one from interactions).

    A profile becomes valid at ``event_timestamp`` if given, else at the user's first
    interaction, so point-in-time joins never see a profile before the user existed.
    """
    table = "users"
    df, out, first_seen = _entity_table(df, interactions, table, "user_id")
    out["age"] = _optional_int(df, table, "age")
    for col in ("gender", "occupation", "zip_code"):
        out[col] = df[col].astype("string").fillna("") if col in df else ""
        out[col] = out[col].astype(str)
    ts_col = _timestamp_column(df)
    if ts_col:
        out["event_timestamp"] = _timestamps(df, table, ts_col)
    else:
        fallback = first_seen.min() if len(first_seen) else pd.Timestamp.now(tz="UTC")
        out["event_timestamp"] = out["user_id"].map(first_seen).fillna(fallback)
        out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    return out.reset_index(drop=True)


def _genres(values: pd.Series) -> pd.Series:
    def split(value: object) -> list[str]:
        if isinstance(value, list | tuple | np.ndarray):  # parquet gives lists back as arrays
            return [str(v) for v in value]
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return []
        text = str(value)
        sep = "|" if "|" in text else None
        return [g for g in text.split(sep) if g]

    return values.map(split)


def _flags(df: pd.DataFrame, table: str, column: str) -> pd.Series:
    """A boolean column from bools, 0/1 or true/false text; missing values count as True."""
    text = df[column].map(lambda v: str(v).strip().lower() if v is not None else "")
    truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    bad = text[~text.isin([*truth, "", "nan", "none", "<na>"])]
    if len(bad):
        raise InvalidDataset(
            f"{table}: column {column!r} row {bad.index[0]}: {df[column].loc[bad.index[0]]!r} "
            "is not a boolean (true/false, 1/0, yes/no)"
        )
    return text.map(lambda v: truth.get(v, True)).astype(bool)


def canonical_items(df: pd.DataFrame | None, interactions: pd.DataFrame) -> pd.DataFrame:
    """Coerce an items table (or derive one with ids as titles from interactions)."""
    table = "items"
    df, out, first_seen = _entity_table(df, interactions, table, "item_id")
    titles = df["title"].astype("string") if "title" in df else out["item_id"]
    out["title"] = titles.fillna(out["item_id"]).astype(str)
    out["year"] = _optional_int(df, table, "year")
    out["genres"] = _genres(df["genres"]) if "genres" in df else [[] for _ in range(len(out))]
    out["available"] = _flags(df, table, "available") if "available" in df else True
    fallback = first_seen.min() if len(first_seen) else pd.Timestamp.now(tz="UTC")
    out["event_timestamp"] = (
        out["item_id"].map(first_seen).fillna(fallback).astype("datetime64[ns, UTC]")
    )
    return out.reset_index(drop=True)


def check_references(interactions: pd.DataFrame, items: pd.DataFrame) -> None:
    """Every interacted item must exist in the items table (when one was given)."""
    unknown = set(interactions["item_id"].unique()) - set(items["item_id"])
    if unknown:
        shown = ", ".join(sorted(unknown)[:10])
        raise InvalidDataset(
            f"interactions: column 'item_id' has {len(unknown)} id(s) missing from items: {shown}"
        )
