"""Replay the served hybrid as of a cutoff T, path by path.

Known users (seen before T) get the list the nightly job would have stored from data before T;
users first seen after T go through the real-time path with their first n interactions
(fold-in + FAISS), or their profile only (n = 0). The popularity fallback is scored on the same
users and truth as each path (``popular known``, ``popular n=X``), so each path's lift is a
number; across paths, truth sizes differ, so compare a path with its own fallback. The
serving functions are the API's own.

Truth is what each user did from T on (after their first n, for new users), restricted to items
in the model's catalog and not already seen: an item first released after T cannot be served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from recommender.batch.scoring import top_n_lists
from recommender.evaluation.metrics import (
    catalog_coverage,
    intra_list_diversity,
    mean_metrics,
    ndcg_at_k,
    novelty,
)
from recommender.evaluation.pathevidence import Describe, Served, served_paths
from recommender.models.configs import als_config
from recommender.serving import paths
from recommender.serving.diversity import POOL, diversify
from recommender.serving.paths import Ranked, RankingInput
from recommender.training.artifacts import ModelBundle
from recommender.training.fit import fit_bundle

ACTIVITY_BINS = (0, 20, 50, 100, 1_000_000_000)
ACTIVITY_LABELS = ("<20", "20-49", "50-99", "100+")


def _activity(count: int) -> str:
    idx = int(np.searchsorted(ACTIVITY_BINS, count, side="right")) - 1
    return "activity " + ACTIVITY_LABELS[min(max(idx, 0), len(ACTIVITY_LABELS) - 1)]


def _gender(profiles: pd.DataFrame, user_id: str) -> str:
    if "gender" not in profiles.columns or user_id not in profiles.index:
        return "gender ?"
    value = profiles.at[user_id, "gender"]
    return f"gender {value}" if isinstance(value, str) and value else "gender ?"


def known_users(
    bundle: ModelBundle,
    after: pd.DataFrame,
    k: int,
    top_n: int,
    diversity: float = 0.0,
    stored: pd.DataFrame | None = None,
) -> list[Served]:
    """Each known user's stored list as the API serves it (``stored``: the nightly's lists,
    ``user_id``-indexed ``rec_item_ids`` / ``rec_scores``; default: the ALS lists), and the
    popularity fallback, on what they did after the cut-off."""
    if stored is None:
        rows = bundle.users.rows(after["user_id"].astype(str).unique())
        rows = rows[rows >= 0]  # the judged users the model knows
        stored = top_n_lists(bundle, top_n, user_rows=rows).set_index("user_id")
    seen_counts = np.diff(bundle.user_items.indptr)
    out = []
    for user_id, group in after.groupby("user_id"):
        row = bundle.users.row(str(user_id))
        if row is None:
            continue
        seen = set(bundle.items.ids[bundle.user_items[row].indices].tolist())
        truth = set(group["item_id"]) - seen
        if not truth:
            continue
        lst = stored.loc[str(user_id)]
        ranked = _diversified(
            bundle,
            paths.from_precomputed(
                bundle,
                {"item_ids": lst["rec_item_ids"], "scores": lst["rec_scores"]},
                _pool(k, diversity),
            ),
            k,
            diversity,
        )
        segment = _activity(int(seen_counts[row]))
        out.append(Served("precomputed", 0, str(user_id), segment, ranked.item_ids, truth))
        fallback = paths.popular(bundle, k, exclude=set(bundle.user_items[row].indices.tolist()))
        out.append(Served("popular known", 0, str(user_id), segment, fallback.item_ids, truth))
    return out


def new_users(
    bundle: ModelBundle,
    after: pd.DataFrame,
    profiles: pd.DataFrame,
    k: int,
    ns: Sequence[int],
    diversity: float = 0.0,
    ranking: Callable[[str, Mapping[str, Any]], RankingInput] | None = None,
) -> list[Served]:
    """Each new user's real-time list with their first ``n`` items (and profile) and their
    profile alone, and the popularity fallback, on what they did next. ``ranking``: a ranked
    bundle's ranking input for a user id and profile; the users with items then take the
    two-stage path, and the one-stage fold-in is replayed beside it (``onestage n=``)."""
    out = []
    new = after[~after["user_id"].isin(bundle.users.ids)]
    new = new.sort_values(["user_id", "event_timestamp", "item_id"], kind="stable")
    groups = list(new.groupby("user_id"))
    for user_id, group in tqdm(groups, desc="replaying new users", disable=None, leave=False):
        uid = str(user_id)
        items = list(dict.fromkeys(group["item_id"]))
        segment = _gender(profiles, uid)
        profile = profiles.loc[uid].to_dict() if uid in profiles.index else {}
        for n in (0, *ns):
            context, truth = items[:n], set(items[n:]) - set(items[:n])
            if not truth:
                continue
            pool = _pool(k, diversity)
            if n == 0:
                ranked = paths.realtime(bundle, pool, profile=profile)
                path = "realtime profile" if ranked.source == "realtime" else "popular"
            else:
                # as the API would: pushed items plus the profile read from Feast
                ranked = paths.realtime(
                    bundle,
                    pool,
                    recent_item_ids=context,
                    profile=profile,
                    ranking=ranking(uid, profile) if ranking is not None else None,
                )
                path = f"realtime n={n}" if ranked.source == "realtime" else "popular"
                if ranking is not None:
                    one = paths.realtime(bundle, pool, recent_item_ids=context, profile=profile)
                    one = _diversified(bundle, one, k, diversity)
                    out.append(Served(f"onestage n={n}", n, uid, segment, one.item_ids, truth))
            ranked = _diversified(bundle, ranked, k, diversity)
            out.append(Served(path, n, uid, segment, ranked.item_ids, truth))
            rows = bundle.items.rows(context)
            fallback = paths.popular(bundle, k, exclude=set(rows[rows >= 0].tolist()))
            out.append(Served(f"popular n={n}", n, uid, segment, fallback.item_ids, truth))
    return out


def _pool(k: int, diversity: float) -> int:
    return k * POOL if diversity > 0 else k


def _diversified(bundle: ModelBundle, ranked: Ranked, k: int, diversity: float) -> Ranked:
    """As the API serves with ``RECO_DIVERSITY``: the path's pool re-ranked by MMR."""
    return diversify(ranked, bundle.item_unit, k, diversity) if diversity > 0 else ranked


def beyond_accuracy(bundle: ModelBundle, k: int) -> Describe:
    """Coverage@k, novelty@k (training popularity) and intra-list diversity@k (cosine
    distance of the model's item vectors) of a set of lists."""
    counts = np.diff(bundle.user_items.tocsc().indptr)
    popularity = dict(zip(bundle.items.ids.tolist(), counts.tolist(), strict=True))
    vectors = dict(zip(bundle.items.ids.tolist(), bundle.item_unit, strict=True))
    n_users, n_items = len(bundle.users), len(bundle.items)

    def describe(lists: list[Sequence[str]]) -> dict[str, float]:
        return {
            f"coverage@{k}": catalog_coverage(lists, n_items, k),
            f"novelty@{k}": novelty(lists, popularity, n_users, k),
            f"ild@{k}": intra_list_diversity(lists, vectors, k),
        }

    return describe


def summarise(
    served: list[Served], ks: Sequence[int], n_items: int, describe: Describe | None = None
) -> list[dict[str, Any]]:
    """Metrics per path, and per path and segment (with ``describe``: novelty and intra-list
    diversity at the largest k too)."""
    frame = pd.DataFrame([s.__dict__ for s in served])
    rows: list[dict[str, Any]] = []
    if frame.empty:
        return rows
    for keys, group in [*frame.groupby(["path"]), *frame.groupby(["path", "segment"])]:
        path, segment = (keys[0], "all") if len(keys) == 1 else keys
        lists, truth = list(group["items"]), list(group["truth"])
        metrics = mean_metrics(lists, truth, ks)
        metrics.update({f"coverage@{k}": catalog_coverage(lists, n_items, k) for k in ks})
        if describe is not None:
            metrics.update(describe(lists))
        rows.append({"path": path, "segment": segment, "users": len(group), **metrics})
    return rows


def replay_served(
    interactions: pd.DataFrame,
    profiles: pd.DataFrame,
    titles: pd.Series,
    cutoff: datetime,
    als_params: dict[str, Any],
    k: int = 10,
    ns: Sequence[int] = (1, 3, 5),
    top_n: int = 100,
    diversity: float = 0.0,
    popularity_blend: float = 0.0,
    known: bool = True,
) -> tuple[ModelBundle, pd.DataFrame, list[Served]]:
    """Fit on everything before ``cutoff``; every user's served list on each path (and the
    path's popularity fallback) against what followed: the bundle, the interactions after the
    cut-off (in its catalog) and the served lists. ``popularity_blend``: the new users'
    fold-in blended with popularity, as a bundle with that manifest value serves it;
    ``known=False`` replays new users only (the known users' lists cost a scoring run)."""
    ts = interactions["event_timestamp"]
    before, after = interactions[ts < cutoff], interactions[ts >= cutoff]
    if before.empty or after.empty:
        raise ValueError(f"the cutoff {cutoff} leaves no interactions on one side")
    bundle = fit_bundle(before, titles, profiles, als_config(als_params), version="replay")
    bundle.manifest = bundle.manifest.model_copy(update={"popularity_blend": popularity_blend})
    after = judged_users(after[after["item_id"].isin(bundle.items.ids)], bundle.users.ids)
    served = known_users(bundle, after, k, top_n, diversity) if known else []
    served += new_users(bundle, after, profiles, k, ns, diversity)
    return bundle, after, served


MAX_KNOWN_USERS = 20_000  # users a replay judges per kind (a seeded sample beyond it)
MAX_NEW_USERS = 1_000


def judged_users(
    after: pd.DataFrame,
    known_ids: np.ndarray,
    max_known: int = MAX_KNOWN_USERS,
    max_new: int = MAX_NEW_USERS,
    seed: int = 0,
) -> pd.DataFrame:
    """``after``'s rows of at most ``max_known`` users the model knows and ``max_new`` it does
    not (seeded samples): a replay at a million users judges tens of thousands of them, each
    new one through several real-time requests; the intervals say what the sample costs."""
    users = pd.Series(after["user_id"].unique())
    keep = []
    for group, cap in (
        (users[users.isin(known_ids)], max_known),
        (users[~users.isin(known_ids)], max_new),
    ):
        if len(group) > cap:
            group = pd.Series(
                np.random.default_rng(seed).choice(group.to_numpy(), cap, replace=False)
            )
        keep.append(group)
    return after[after["user_id"].isin(pd.concat(keep))]


def choose_blend(
    bundle: ModelBundle,
    after: pd.DataFrame,
    profiles: pd.DataFrame,
    weights: Sequence[float],
    k: int = 10,
    ns: Sequence[int] = (1, 3, 5),
) -> tuple[float, dict[float, float]]:
    """The popularity blend among ``weights`` whose new-user lists (every ``n``) score the
    best mean NDCG@``k`` on what followed, and each weight's score (ties: the smaller)."""
    scores: dict[float, float] = {}
    for weight in weights:
        bundle.manifest = bundle.manifest.model_copy(update={"popularity_blend": weight})
        served = [
            s for s in new_users(bundle, after, profiles, k, ns) if s.path.startswith("realtime n=")
        ]
        scores[weight] = float(np.mean([ndcg_at_k(s.items, s.truth, k) for s in served] or [0.0]))
    best = max(weights, key=lambda w: (scores[w], -w))
    return best, scores


def replay_hybrid(
    interactions: pd.DataFrame,
    profiles: pd.DataFrame,
    titles: pd.Series,
    cutoff: datetime,
    als_params: dict[str, Any],
    ks: Sequence[int] = (10,),
    ns: Sequence[int] = (1, 3, 5),
    top_n: int = 100,
) -> dict[str, Any]:
    """Train on everything before ``cutoff`` and score each serving path on what followed."""
    bundle, after, served = replay_served(
        interactions, profiles, titles, cutoff, als_params, max(ks), ns, top_n
    )
    return {
        "cutoff": pd.Timestamp(cutoff).isoformat(),
        "train_interactions": int((interactions["event_timestamp"] < cutoff).sum()),
        "known_users": len(bundle.users),
        "new_users": int(
            (~after["user_id"].isin(bundle.users.ids)).groupby(after["user_id"]).all().sum()
        ),
        "rows": summarise(served, ks, len(bundle.items), beyond_accuracy(bundle, max(ks))),
        "paths": served_paths(
            served, pd.Timestamp(cutoff).isoformat(), 10, describe=beyond_accuracy(bundle, 10)
        ).model_dump(),
    }
