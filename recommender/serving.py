"""The hybrid's decisions, without I/O: which path serves a user, and the ranked items.

Paths (``source``) and how they were reached (``strategy``):

* ``precomputed`` / ``nightly_list`` - a known user's list written by the nightly job;
* ``realtime`` / ``user_vector`` - a known user without a stored list (model factors + FAISS);
* ``realtime`` / ``fold_in`` - items known for the user (request or pushed events): ALS
  fold-in of those items (for a new user plus a small profile prior, see
  :data:`FOLD_IN_PRIOR`), then FAISS;
* ``realtime`` / ``profile`` - only profile attributes: the profile model's vector, then FAISS;
* ``popular`` / ``popularity`` - nothing known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from recommender.artifacts import ModelBundle
from recommender.errors import UnknownItems
from recommender.matrix import items_row

# A new user's fold-in vector gets the profile vector (the mean user when no profile is known)
# added, scaled to this fraction of the fold-in vector's norm. Folded in from one to five items
# alone, the vector ranked worse than popularity (NDCG@10 on the ML-100K replay); the prior
# pulls it toward what such users like. Chosen on a replay at the 70% time cutoff among
# 0.25/0.5/1/2, reported at 80% (docs/evaluation.md).
FOLD_IN_PRIOR = 0.5


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


def check_items(bundle: ModelBundle, item_ids: Iterable[str]) -> list[str]:
    """Validate request item ids against the model's catalog; raise naming the unknown ones."""
    ids = [str(i) for i in item_ids]
    unknown = [i for i in dict.fromkeys(ids) if i not in bundle.items]
    if unknown:
        raise UnknownItems(unknown)
    return ids


def _rows_to_ranked(
    bundle: ModelBundle, rows: np.ndarray, scores: np.ndarray, source: str, strategy: str
) -> Ranked:
    keep = rows >= 0
    return Ranked(
        item_ids=[str(bundle.items.ids[r]) for r in rows[keep]],
        scores=[float(s) for s in scores[keep]],
        source=source,
        strategy=strategy,
        model_version=bundle.version,
    )


def popular(bundle: ModelBundle, k: int, exclude: set[int] | None = None) -> Ranked:
    """The most popular items of the training data, minus ``exclude`` (item rows)."""
    order = bundle.popularity.ranking
    if exclude:
        order = order[~np.isin(order, np.fromiter(exclude, dtype=np.int64))]
    top = order[:k]
    return _rows_to_ranked(bundle, top, bundle.popularity.item_scores[top], "popular", "popularity")


def _search(
    bundle: ModelBundle, vector: np.ndarray, k: int, exclude: set[int], strategy: str
) -> Ranked:
    rows, scores = bundle.index.search(vector[None, :], k, exclude=[exclude])
    return _rows_to_ranked(bundle, rows[0], scores[0], "realtime", strategy)


def known_user(bundle: ModelBundle, user_row: int, k: int) -> Ranked:
    """Real-time list for a known user from their trained vector (no stored list found)."""
    seen = set(bundle.user_items[user_row].indices.tolist())
    return _search(bundle, bundle.als.user_factors[user_row], k, seen, "user_vector")


def realtime(
    bundle: ModelBundle,
    k: int,
    recent_item_ids: Sequence[str] = (),
    profile: Mapping[str, Any] | None = None,
    user_row: int | None = None,
    prior_weight: float = FOLD_IN_PRIOR,
) -> Ranked:
    """Real-time inference for a new user, or a known user whose context changed.

    Known item ids (request or pushed) are folded into the ALS model together with the user's
    training items (if any); otherwise the profile model gives the vector; otherwise popular.
    Items that are not in the model's catalog are ignored here (the API rejects them earlier).
    """
    recent_rows = bundle.items.rows(recent_item_ids)
    recent_rows = recent_rows[recent_rows >= 0]
    seen = set(recent_rows.tolist())
    if user_row is not None:
        seen |= set(bundle.user_items[user_row].indices.tolist())
    if len(recent_rows):
        row = items_row(np.fromiter(seen, dtype=np.int64), len(bundle.items))
        vector = bundle.als.fold_in(row)[0]
        used: dict[str, Any] = {"items": [str(bundle.items.ids[r]) for r in recent_rows]}
        if user_row is None and prior_weight:
            prior = bundle.profile.vector(profile or {})
            scale = float(np.linalg.norm(vector)) / max(float(np.linalg.norm(prior)), 1e-9)
            vector = vector + prior_weight * scale * prior
            tokens = bundle.profile.known_tokens(profile or {})
            if tokens:
                used["profile"] = tokens
        ranked = _search(bundle, vector, k, seen, "fold_in")
        ranked.used = used
        return ranked
    if user_row is not None:
        return known_user(bundle, user_row, k)
    tokens = bundle.profile.known_tokens(profile or {})
    if tokens:
        ranked = _search(bundle, bundle.profile.vector(profile or {}), k, seen, "profile")
        ranked.used = {"profile": tokens}
        return ranked
    return popular(bundle, k)


def from_precomputed(bundle: ModelBundle, stored: Mapping[str, Any], k: int) -> Ranked:
    """The first ``k`` items of a stored nightly list."""
    ids = [str(i) for i in stored["item_ids"]][:k]
    scores = [float(s) for s in stored.get("scores") or []][: len(ids)]
    scores += [0.0] * (len(ids) - len(scores))
    return Ranked(
        item_ids=ids,
        scores=scores,
        source="precomputed",
        strategy="nightly_list",
        model_version=str(stored.get("model_version") or bundle.version),
        generated_at=stored.get("generated_at"),
        run_id=stored.get("run_id"),
    )
