"""One filter and rule engine for every serving path (precomputed, real-time, popular, similar).

A :class:`Catalog` is the serving-time view of item metadata aligned to the model's item rows:
availability and categorical features (``genres`` and any string column). :class:`Rules` are
what one request asks for. :func:`select` keeps the candidates, in their ranked order, that
pass every rule, and stops at ``k``:

* not excluded (items the user has seen, the request's exclude list),
* available (``available`` in item metadata),
* matching every ``include`` feature (any of its values) and no ``exclude`` value,
* at most ``cap`` items per value of one categorical feature (diversity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.sparse import csc_matrix, csr_matrix

from recommender.data.vocab import Vocab
from recommender.errors import InvalidRequest


@dataclass(frozen=True)
class CategoricalFeature:
    """Items x values incidence of one categorical feature (multi-valued, like genres)."""

    values: Vocab
    by_item: csr_matrix  # items x values, bool

    @classmethod
    def build(cls, per_item: Iterable[Iterable[str]], n_items: int) -> CategoricalFeature:
        rows: list[int] = []
        cols: list[str] = []
        for row, vals in enumerate(per_item):
            for v in vals:
                rows.append(row)
                cols.append(str(v))
        vocab = Vocab.from_ids(sorted(set(cols)))
        data = np.ones(len(rows), dtype=bool)
        matrix = csr_matrix(
            (data, (np.asarray(rows, dtype=np.int64), vocab.rows(cols))),
            shape=(n_items, len(vocab)),
        )
        return cls(vocab, matrix)


class Catalog:
    """Availability and categorical features per item row of a model.

    Example: ``Catalog.from_frame(items, vocab).matches("genres", {"Comedy"})`` is a bool mask.
    """

    def __init__(self, available: np.ndarray, features: Mapping[str, CategoricalFeature]):
        self.available = np.asarray(available, dtype=bool)
        self.features = dict(features)
        self.matches = lru_cache(maxsize=256)(self._matches)

    @classmethod
    def everything_available(cls, n_items: int) -> Catalog:
        return cls(np.ones(n_items, dtype=bool), {})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, items: Vocab) -> Catalog:
        """Item metadata (``item_id`` plus columns) aligned to ``items``; unknown rows ignored,
        missing rows available with no feature values."""
        by_row = frame.drop_duplicates("item_id", keep="last").set_index("item_id")
        by_row = by_row.reindex(items.ids)
        available = (
            by_row["available"]
            .map(lambda v: True if v is None or v is pd.NA or v != v else bool(v))
            .astype(bool)
            .to_numpy()
            if "available" in by_row
            else np.ones(len(items), dtype=bool)
        )
        features = {}
        for name in by_row.columns:
            if name in ("title", "available", "event_timestamp", "_ts"):
                continue
            col = by_row[name]
            sample = col.dropna()
            if sample.empty:
                continue
            first = sample.iloc[0]
            if isinstance(first, list | tuple | np.ndarray):
                per_item = [
                    list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in col
                ]
            elif isinstance(first, str):
                per_item = [[v] if isinstance(v, str) and v else [] for v in col]
            else:
                continue
            features[name] = CategoricalFeature.build(per_item, len(items))
        return cls(available, features)

    def feature(self, name: str) -> CategoricalFeature:
        try:
            return self.features[name]
        except KeyError:
            known = ", ".join(sorted(self.features)) or "none"
            raise InvalidRequest(
                f"unknown item feature {name!r} (categorical features: {known})"
            ) from None

    def _matches(self, name: str, values: frozenset[str]) -> np.ndarray:
        """Rows having any of ``values`` for feature ``name`` (cached per catalog)."""
        feat = self.feature(name)
        cols = feat.values.rows(sorted(values))
        cols = cols[cols >= 0]
        if not len(cols):
            return np.zeros(feat.by_item.shape[0], dtype=bool)
        hits = csc_matrix(feat.by_item)[:, cols].sum(axis=1)
        return np.asarray(hits).ravel() > 0


@dataclass(frozen=True)
class Rules:
    """What one request asks of the served list."""

    exclude_rows: frozenset[int] = frozenset()
    include: Mapping[str, frozenset[str]] = field(default_factory=dict)
    exclude: Mapping[str, frozenset[str]] = field(default_factory=dict)
    cap_feature: str | None = None
    cap: int | None = None

    def with_excluded(self, rows: Iterable[int]) -> Rules:
        return Rules(
            self.exclude_rows | frozenset(int(r) for r in rows),
            self.include,
            self.exclude,
            self.cap_feature,
            self.cap,
        )

    def check(self, catalog: Catalog) -> None:
        """Raise :class:`InvalidRequest` naming a feature the catalog does not have."""
        for name in [
            *self.include,
            *self.exclude,
            *([self.cap_feature] if self.cap_feature else []),
        ]:
            catalog.feature(name)


def parse_feature_values(specs: Iterable[str], what: str) -> dict[str, frozenset[str]]:
    """``["genres:Comedy", "genres:Drama"]`` -> ``{"genres": {"Comedy", "Drama"}}``."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        name, sep, value = spec.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise InvalidRequest(f"{what}: expected 'feature:value', got {spec!r}")
        out.setdefault(name.strip(), set()).add(value.strip())
    return {k: frozenset(v) for k, v in out.items()}


def parse_cap(spec: str | None) -> tuple[str | None, int | None]:
    """``"genres:2"`` -> ``("genres", 2)``: at most two items per genre."""
    if not spec:
        return None, None
    name, sep, number = spec.partition(":")
    if not sep or not number.isdigit() or int(number) < 1 or not name:
        raise InvalidRequest(f"cap: expected 'feature:N' with N >= 1, got {spec!r}")
    return name, int(number)


def select(
    rows: np.ndarray, scores: np.ndarray, rules: Rules, catalog: Catalog, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` candidates (in order) that pass every rule."""
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    keep = (rows >= 0) & (rows < len(catalog.available))
    rows, scores = rows[keep], scores[keep]
    mask = catalog.available[rows]
    if rules.exclude_rows:
        mask &= ~np.isin(rows, np.fromiter(rules.exclude_rows, dtype=np.int64))
    for name, values in rules.include.items():
        mask &= catalog.matches(name, values)[rows]
    for name, values in rules.exclude.items():
        mask &= ~catalog.matches(name, values)[rows]
    rows, scores = rows[mask], scores[mask]
    if rules.cap_feature and rules.cap:
        rows, scores = _capped(rows, scores, catalog.feature(rules.cap_feature), rules.cap, k)
    return rows[:k], scores[:k]


def _capped(
    rows: np.ndarray, scores: np.ndarray, feat: CategoricalFeature, cap: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Skip an item when any of its values already has ``cap`` items in the list."""
    counts: dict[int, int] = {}
    kept: list[int] = []
    indptr, indices = feat.by_item.indptr, feat.by_item.indices
    for pos, row in enumerate(rows.tolist()):
        values = indices[indptr[row] : indptr[row + 1]].tolist()
        if any(counts.get(v, 0) >= cap for v in values):
            continue
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        kept.append(pos)
        if len(kept) == k:
            break
    idx = np.asarray(kept, dtype=np.int64)
    return rows[idx], scores[idx]


def rules_from(
    items: Vocab,
    catalog: Catalog,
    exclude_item_ids: Iterable[str] = (),
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    cap: str | None = None,
) -> Rules:
    """A request's rules from its raw parameters; unknown excluded ids are ignored (they can
    never be recommended), unknown features raise :class:`InvalidRequest`."""
    rows = items.rows(exclude_item_ids)
    cap_feature, cap_n = parse_cap(cap)
    rules = Rules(
        frozenset(rows[rows >= 0].tolist()),
        parse_feature_values(include, "include"),
        parse_feature_values(exclude, "exclude"),
        cap_feature,
        cap_n,
    )
    rules.check(catalog)
    return rules
