"""Per-path evidence from a replay: what each serving path gave the users who took it, against
that path's own popularity fallback on the same users and truth, with a paired bootstrap
interval, and the route it implies. Pure.

Paths: ``known`` (a known user's precomputed list), ``new:n`` (a new user's first ``n`` items,
real time), ``profile`` (a new user's profile only). A path whose mean NDCG@10 is below its
fallback's is routed to popularity: the evidence says popularity serves those users better,
so the bundle serves it instead (:meth:`ServedPaths.routed`, read by the hybrid decision).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.evaluation.bootstrap import paired_bootstrap
from recommender.evaluation.metrics import ndcg_at_k
from recommender.training.manifest import MIN_PATH_USERS, PathEvidence, ServedPaths

# the replay's path names -> (path key, whether it is the fallback)
_KEYS = {"precomputed": ("known", False), "popular known": ("known", True)}
_KEYS |= {"realtime profile": ("profile", False), "popular n=0": ("profile", True)}


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


def path_key(name: str) -> tuple[str, bool] | None:
    """``("new:3", False)`` for ``realtime n=3``, ``("new:3", True)`` for ``popular n=3``;
    None for a list no path chose (a new user the real-time path sent to popularity)."""
    if name in _KEYS:
        return _KEYS[name]
    for prefix, fallback in (("realtime n=", False), ("popular n=", True)):
        if name.startswith(prefix):
            return f"new:{name[len(prefix) :]}", fallback
    return None


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
    scores: dict[str, dict[str, dict[bool, float]]] = defaultdict(lambda: defaultdict(dict))
    lists: dict[tuple[str, bool], list[Sequence[str]]] = defaultdict(list)
    for s in served:
        key = path_key(s.path)
        if key is not None:
            scores[key[0]][s.user_id][key[1]] = ndcg_at_k(s.items, s.truth, k)
            lists[key].append(s.items)
    out: dict[str, PathEvidence] = {}
    for path, users in scores.items():
        pairs = [(v[False], v[True]) for v in users.values() if False in v and True in v]
        if not pairs:
            continue
        model, fallback = (np.array(col) for col in zip(*pairs, strict=True))
        interval = paired_bootstrap(model, fallback, path, "popular", seed=seed)
        loses = len(pairs) >= min_users and interval.mean_a < interval.mean_b
        out[path] = PathEvidence(
            path=path,
            users=len(pairs),
            ndcg=round(interval.mean_a, 6),
            fallback_ndcg=round(interval.mean_b, 6),
            ratio=round(interval.ratio, 4) if np.isfinite(interval.ratio) else None,
            diff_low=round(interval.low, 6),
            diff_high=round(interval.high, 6),
            route="popular" if loses else "model",
            beyond=_beyond(describe, lists[path, False], lists[path, True]),
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
