"""Per-path evidence from a replay: what each serving path gave the users who took it, against
that path's own popularity fallback on the same users and truth, with a paired bootstrap
interval, and the route it implies. Pure.

Paths: ``known`` (a known user's precomputed list), ``new:n`` (a new user's first ``n`` items,
real time), ``profile`` (a new user's profile only). A path whose mean NDCG@10 is below its
fallback's is routed to popularity: the evidence says popularity serves those users better,
so the bundle serves it instead (:meth:`ServedPaths.routed`, read by the hybrid decision).
A ranked bundle's new users are also replayed through the one-stage fold-in (``onestage
n=3``): where it beats both the two-stage path and popularity, it serves them
(:meth:`ServedPaths.one_stage`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.evaluation.bootstrap import paired_bootstrap
from recommender.evaluation.metrics import ndcg_at_k
from recommender.training.manifest import MIN_PATH_USERS, PathEvidence, Route, ServedPaths

# a list's role on its path, and the route that serves it
MODEL: Route = "model"
FALLBACK: Route = "popular"
ONE_STAGE: Route = "one_stage"
# the replay's path names -> (path key, the list's role)
_KEYS = {"precomputed": ("known", MODEL), "popular known": ("known", FALLBACK)}
_KEYS |= {"realtime profile": ("profile", MODEL), "popular n=0": ("profile", FALLBACK)}
_PREFIXES = (("realtime n=", MODEL), ("popular n=", FALLBACK), ("onestage n=", ONE_STAGE))


@dataclass
class Served:
    """One user's served list on one path (``path``: the replay's name, e.g. ``realtime n=3``
    or its fallback ``popular n=3``)."""

    path: str
    n: int
    user_id: str
    segment: str
    items: list[str]
    truth: set[str]


def path_key(name: str) -> tuple[str, Route] | None:
    """``("new:3", "model")`` for ``realtime n=3``, ``("new:3", "popular")`` for ``popular
    n=3``, ``("new:3", "one_stage")`` for ``onestage n=3``; None for a list no path chose (a
    new user the real-time path sent to popularity)."""
    if name in _KEYS:
        return _KEYS[name]
    for prefix, role in _PREFIXES:
        if name.startswith(prefix):
            return f"new:{name[len(prefix) :]}", role
    return None


def _route(model: float, fallback: float, one_stage: float | None, enough: bool) -> Route:
    """The best of the path as built, the one-stage fold-in (if replayed) and popularity;
    the path as built on ties, and always with too little evidence."""
    if not enough:
        return MODEL
    best = max(model, fallback, one_stage if one_stage is not None else -1.0)
    if model >= best:
        return MODEL
    return ONE_STAGE if one_stage is not None and one_stage >= best else FALLBACK


Describe = Callable[[list[Sequence[str]]], dict[str, float]]


def served_paths(
    served: Sequence[Served],
    cutoff: str,
    k: int = 10,
    seed: int = 0,
    min_users: int = MIN_PATH_USERS,
    describe: Describe | None = None,
) -> ServedPaths:
    """Each path's NDCG@``k`` against its fallback on the users that took it (paired), and its
    route. A path with fewer than ``min_users`` users keeps the model (too little evidence).
    ``describe``: beyond-accuracy figures of a set of lists (coverage, novelty, diversity),
    kept for the path's lists and its fallback's."""
    scores: dict[str, dict[str, dict[Route, float]]] = defaultdict(lambda: defaultdict(dict))
    lists: dict[tuple[str, Route], list[Sequence[str]]] = defaultdict(list)
    for s in served:
        key = path_key(s.path)
        if key is not None:
            scores[key[0]][s.user_id][key[1]] = ndcg_at_k(s.items, s.truth, k)
            lists[key].append(s.items)
    out: dict[str, PathEvidence] = {}
    for path, users in scores.items():
        paired = [v for v in users.values() if MODEL in v and FALLBACK in v]
        if not paired:
            continue
        model = np.array([v[MODEL] for v in paired])
        fallback = np.array([v[FALLBACK] for v in paired])
        alt = [v[ONE_STAGE] for v in paired if ONE_STAGE in v]
        one_stage = float(np.mean(alt)) if len(alt) == len(paired) else None
        interval = paired_bootstrap(model, fallback, path, "popular", seed=seed)
        route = _route(interval.mean_a, interval.mean_b, one_stage, len(paired) >= min_users)
        out[path] = PathEvidence(
            path=path,
            users=len(paired),
            ndcg=round(interval.mean_a, 6),
            fallback_ndcg=round(interval.mean_b, 6),
            ratio=round(interval.ratio, 4) if np.isfinite(interval.ratio) else None,
            diff_low=round(interval.low, 6),
            diff_high=round(interval.high, 6),
            route=route,
            one_stage_ndcg=round(one_stage, 6) if one_stage is not None else None,
            beyond=_beyond(describe, lists[path, MODEL], lists[path, FALLBACK]),
        )
    return ServedPaths(cutoff=cutoff, k=k, paths=dict(sorted(out.items())))


def _beyond(
    describe: Describe | None, model: list[Sequence[str]], fallback: list[Sequence[str]]
) -> dict[str, float]:
    if describe is None:
        return {}
    out = {name: round(v, 4) for name, v in describe(model).items()}
    out |= {f"fallback_{name}": round(v, 4) for name, v in describe(fallback).items()}
    return out
