"""The serving paths, without I/O: ranked candidates per path, filtered by one rule engine.

Paths (``source``) and how they were reached (``strategy``):

* ``precomputed`` / ``nightly_list`` - a known user's list written by the nightly job (topped
  up from the user's vector, ``nightly_list+user_vector``, when filters leave too few);
* ``realtime`` / ``user_vector`` - a known user without a usable stored list (FAISS);
* ``realtime`` / ``fold_in`` - items known for the user (request or pushed events): ALS
  fold-in of those items (for a new user plus a small profile prior, see
  :data:`FOLD_IN_PRIOR`), then FAISS;
* ``realtime`` / ``profile`` - only profile attributes: the profile model's vector, then FAISS;
* ``popular`` / ``popularity`` - nothing known, or the online store is unavailable.

Every path over-fetches candidates and passes them through :func:`recommender.serving.rules.select`,
fetching more until ``k`` survive or the catalog is exhausted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from recommender.data.vocab import items_row
from recommender.errors import UnknownItems
from recommender.featurestore.layout import ViewValues
from recommender.ranking.model import source_names
from recommender.serving.rerank import RankingItems, Steps, TwoStageJob, inline
from recommender.serving.rules import Catalog, Rules, select
from recommender.training.artifacts import ModelBundle

# A new user's fold-in vector gets the profile vector (the mean user when no profile is known)
# added, scaled to this fraction of the fold-in vector's norm. Folded in from one to five items
# alone, the vector ranked worse than popularity (NDCG@10 on the ML-100K replay); the prior
# pulls it toward what such users like. Chosen on a replay at the 70% time cutoff among
# 0.25/0.5/1/2, reported at 80% (docs/evaluation.md).
FOLD_IN_PRIOR = 0.5

Fetch = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass
class Ranked:
    """A served list with where it came from."""

    item_ids: list[str]
    scores: list[float]
    source: str
    strategy: str
    model_version: str
    generated_at: datetime | None = None
    run_id: str | None = None
    used: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why this path and not a better one
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    because: list[str | None] | None = None  # per item: the user's item it is closest to
    provenance: list[list[str]] | None = None  # per item: the retrievers that proposed it
    moved_by: list[list[str]] | None = None  # per item: ranker features that moved it up


@dataclass(frozen=True)
class RankingInput:
    """What the two-stage path needs beyond the bundle: the in-memory item features, the
    user's online views (``user_activity``, ``user_profile``) and the request's time."""

    items: RankingItems
    user_id: str
    user_views: Mapping[str, ViewValues]
    now: datetime
    explain: bool = False


@lru_cache(maxsize=8)
def _open_catalog(n_items: int) -> Catalog:
    return Catalog.everything_available(n_items)


def _defaults(
    bundle: ModelBundle, rules: Rules | None, catalog: Catalog | None
) -> tuple[Rules, Catalog]:
    return rules or Rules(), catalog or _open_catalog(len(bundle.items))


def check_items(bundle: ModelBundle, item_ids: Iterable[str]) -> list[str]:
    """Validate request item ids against the model's catalog; raise naming the unknown ones."""
    ids = [str(i) for i in item_ids]
    unknown = [i for i in dict.fromkeys(ids) if i not in bundle.items]
    if unknown:
        raise UnknownItems(unknown)
    return ids


def fill(
    fetch: Fetch, rules: Rules, catalog: Catalog, k: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ask ``fetch`` for ever more candidates until ``k`` pass the rules (or none are left)."""
    m = min(n_items, max(4 * k, k + len(rules.exclude_rows) + 16))
    while True:
        rows, scores = fetch(m)
        got = select(rows, scores, rules, catalog, k)
        if len(got[0]) >= k or m >= n_items:
            return got
        m = min(n_items, m * 4)


def _ranked(
    bundle: ModelBundle, rows: np.ndarray, scores: np.ndarray, source: str, strategy: str
) -> Ranked:
    return Ranked(
        item_ids=bundle.items.ids[rows].tolist(),
        scores=np.asarray(scores, dtype=np.float64).tolist(),
        source=source,
        strategy=strategy,
        model_version=bundle.version,
        rows=rows,
    )


def popular(
    bundle: ModelBundle,
    k: int,
    exclude: Iterable[int] | None = None,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
) -> Ranked:
    """The most popular items of the training data that pass the rules, minus ``exclude``."""
    rules, catalog = _defaults(bundle, rules, catalog)
    rules = rules.with_excluded(exclude if exclude is not None else ())
    order, item_scores = bundle.popularity.ranking, bundle.popularity.item_scores

    def fetch(m: int) -> tuple[np.ndarray, np.ndarray]:
        return order[:m], item_scores[order[:m]]

    rows, scores = fill(fetch, rules, catalog, k, len(order))
    return _ranked(bundle, rows, scores, "popular", "popularity")


def search(
    bundle: ModelBundle, vector: np.ndarray, k: int, rules: Rules, catalog: Catalog, strategy: str
) -> Ranked:
    """FAISS neighbours of ``vector`` that pass the rules."""

    def fetch(m: int) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = bundle.index.search_raw(vector[None, :], m)
        return rows[0], scores[0]

    rows, scores = fill(fetch, rules, catalog, k, bundle.index.size)
    return _ranked(bundle, rows, scores, "realtime", strategy)


def blended_search(
    bundle: ModelBundle, vector: np.ndarray, k: int, rules: Rules, catalog: Catalog, weight: float
) -> Ranked:
    """A new user's fold-in blended with popularity: every item scored
    ``(1 - weight) * z(item factors . vector) + weight * z(log(1 + popularity))`` (z-scores over
    the catalog; the inner product the index searches by), the best that pass the rules.
    ``weight`` is the bundle's ``popularity_blend``, chosen on a replay at training time."""
    affinity = bundle.als.item_factors @ vector
    score = (1 - weight) * _z(affinity) + weight * bundle.popularity_z
    n = len(score)

    def fetch(m: int) -> tuple[np.ndarray, np.ndarray]:
        m = min(m, n)
        top = np.argpartition(-score, m - 1)[:m] if m < n else np.arange(n)
        top = top[np.lexsort((top, -score[top]))]  # best first, ties by item row
        return top.astype(np.int64), score[top].astype(np.float32)

    rows, scores = fill(fetch, rules, catalog, k, n)
    return _ranked(bundle, rows, scores, "realtime", "fold_in")


def _z(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def seen_rows(bundle: ModelBundle, user_row: int | None) -> np.ndarray:
    if user_row is None:
        return np.zeros(0, dtype=np.int64)
    return bundle.user_items[user_row].indices.astype(np.int64)


def known_user(
    bundle: ModelBundle,
    user_row: int,
    k: int,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
) -> Ranked:
    """Real-time list for a known user from their trained vector (no stored list found)."""
    rules, catalog = _defaults(bundle, rules, catalog)
    rules = rules.with_excluded(seen_rows(bundle, user_row))
    return search(bundle, bundle.als.user_factors[user_row], k, rules, catalog, "user_vector")


def realtime_steps(
    bundle: ModelBundle,
    k: int,
    recent_item_ids: Sequence[str] = (),
    profile: Mapping[str, Any] | None = None,
    user_row: int | None = None,
    prior_weight: float = FOLD_IN_PRIOR,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
    ranking: RankingInput | None = None,
) -> Steps[Ranked]:
    """Real-time inference for a new user, or a known user whose context changed.

    With a ranker in the bundle and ``ranking`` given, users with known items (or a trained
    vector) get the two-stage path: it yields a :class:`~recommender.serving.rerank.TwoStageJob`
    and is sent its ranking (retrieve, rank; then the rules), so a caller can rank several
    requests' jobs at once.

    Known item ids (request or pushed) are folded into the ALS model together with the user's
    training items (if any); otherwise the profile model gives the vector; otherwise popular.
    Items that are not in the model's catalog are ignored here (the API rejects them earlier).
    """
    rules, catalog = _defaults(bundle, rules, catalog)
    recent_rows = bundle.items.rows(recent_item_ids)
    recent_rows = recent_rows[recent_rows >= 0]
    seen = np.union1d(recent_rows, seen_rows(bundle, user_row))
    rules = rules.with_excluded(seen)
    if (
        ranking is not None
        and bundle.ranking is not None
        and (len(recent_rows) or user_row is not None)
    ):
        got = yield TwoStageJob(
            bundle,
            ranking.items,
            ranking.user_id,
            ranking.user_views,
            user_row,
            recent_rows,
            k,
            rules,
            catalog,
            ranking.now,
            ranking.explain,
        )
        ranked = _ranked(bundle, got.rows, got.scores, "realtime", "two_stage")
        ranked.provenance, ranked.moved_by = got.provenance, got.moved_by
        if len(recent_rows):
            ranked.used = {"items": bundle.items.ids[recent_rows].tolist()}
        return ranked
    if len(recent_rows):
        vector = bundle.als.fold_in(items_row(seen, len(bundle.items)))[0]
        used: dict[str, Any] = {"items": bundle.items.ids[recent_rows].tolist()}
        if user_row is None and prior_weight:
            prior = bundle.profile.vector(profile or {})
            scale = float(np.linalg.norm(vector)) / max(float(np.linalg.norm(prior)), 1e-9)
            vector = vector + prior_weight * scale * prior
            tokens = bundle.profile.known_tokens(profile or {})
            if tokens:
                used["profile"] = tokens
        blend = bundle.manifest.popularity_blend if user_row is None else 0.0
        if blend > 0:
            ranked = blended_search(bundle, vector, k, rules, catalog, blend)
            used["popularity_blend"] = blend
        else:
            ranked = search(bundle, vector, k, rules, catalog, "fold_in")
        ranked.used = used
        return ranked
    if user_row is not None:
        return search(bundle, bundle.als.user_factors[user_row], k, rules, catalog, "user_vector")
    tokens = bundle.profile.known_tokens(profile or {})
    if tokens:
        ranked = search(bundle, bundle.profile.vector(profile or {}), k, rules, catalog, "profile")
        ranked.used = {"profile": tokens}
        return ranked
    return popular(bundle, k, rules=rules, catalog=catalog)


# realtime_steps with its two-stage ranking (if any) done on the spot
realtime = inline(realtime_steps)


def from_precomputed(
    bundle: ModelBundle,
    stored: Mapping[str, Any],
    k: int,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
    user_row: int | None = None,
) -> Ranked:
    """The first ``k`` items of a stored nightly list that pass the rules; when too few do and
    the user is known, the rest comes from the user's vector (``nightly_list+user_vector``)."""
    rules, catalog = _defaults(bundle, rules, catalog)
    rows = bundle.items.rows(stored["item_ids"])
    raw_scores = [float(s) for s in stored.get("scores") or []][: len(rows)]
    scores = np.zeros(len(rows), dtype=np.float32)
    scores[: len(raw_scores)] = raw_scores
    got, got_scores = select(rows, scores, rules, catalog, k)
    ranked = _ranked(bundle, got, got_scores, "precomputed", "nightly_list")
    if len(got) < k and user_row is not None:
        # One selection over the stored list followed by the user's FAISS neighbours, so
        # per-category caps count both parts.
        user_rules = rules.with_excluded(seen_rows(bundle, user_row))
        vector = bundle.als.user_factors[user_row][None, :]

        def fetch(m: int) -> tuple[np.ndarray, np.ndarray]:
            more, more_scores = bundle.index.search_raw(vector, m)
            fresh = ~np.isin(more[0], rows)
            return (
                np.concatenate([rows, more[0][fresh]]),
                np.concatenate([scores, more_scores[0][fresh]]),
            )

        all_rows, all_scores = fill(fetch, user_rules, catalog, k, bundle.index.size)
        added = len(all_rows) - int(np.isin(all_rows, rows).sum())
        ranked = _ranked(bundle, all_rows, all_scores, "precomputed", "nightly_list+user_vector")
        ranked.used = {"topped_up": [str(added)]}
    ranked.model_version = str(stored.get("model_version") or bundle.version)
    ranked.generated_at = stored.get("generated_at")
    ranked.run_id = stored.get("run_id")
    ranked.provenance = stored_provenance(
        rows, stored.get("sources") or [], stored.get("source_names") or [], ranked.rows
    )
    return ranked


def stored_provenance(
    list_rows: np.ndarray, masks: Sequence[int], names: Sequence[str], served: np.ndarray
) -> list[list[str]] | None:
    """Per served item, the retrievers that proposed it, from a stored two-stage list's
    source masks (bit j: ``names[j]``); an item topped up from the user's vector is ALS's.
    None for a list stored without masks (one model's list)."""
    if len(masks) != len(list_rows) or not len(masks) or not names:
        return None
    mask_of = dict(zip(np.asarray(list_rows).tolist(), masks, strict=True))  # -1: no item
    out = []
    for row in np.asarray(served).tolist():
        mask = mask_of.get(row)
        out.append(["als"] if mask is None else source_names(int(mask), names))
    return out


def similar_items(
    bundle: ModelBundle,
    item_row: int,
    k: int,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
) -> Ranked:
    """Items most similar to one item: FAISS inner-product candidates re-ranked by cosine."""
    rules, catalog = _defaults(bundle, rules, catalog)
    rules = rules.with_excluded([item_row])
    unit = bundle.item_unit

    def fetch(m: int) -> tuple[np.ndarray, np.ndarray]:
        rows, _ = bundle.index.search_raw(bundle.als.item_factors[item_row][None, :], 4 * m)
        rows = rows[0][rows[0] >= 0]
        cosine = unit[rows] @ unit[item_row]
        order = np.argsort(-cosine, kind="stable")
        return rows[order], cosine[order]

    rows, scores = fill(fetch, rules, catalog, k, bundle.index.size)
    return _ranked(bundle, rows, scores, "realtime", "similar_items")


def explain(bundle: ModelBundle, ranked: Ranked, history_rows: np.ndarray) -> None:
    """Set ``ranked.because``: for each item, the history item most similar to it (cosine of
    the model's item vectors), or None when there is no history."""
    history = np.unique(np.asarray(history_rows, dtype=np.int64))
    history = history[history >= 0]
    if not len(history) or not len(ranked.rows):
        ranked.because = [None] * len(ranked.item_ids)
        return
    unit = bundle.item_unit
    best = np.argmax(unit[ranked.rows] @ unit[history].T, axis=1)
    ranked.because = bundle.items.ids[history[best]].tolist()
