"""The hybrid's decision for one request: which path serves it, given what the online store
holds for the user (or that the store is unavailable). Pure: the caller reads Redis.

* A known user with a stored list younger than the list TTL, and no events newer than that
  list, gets the list (filtered; events and the request's exclusions removed).
* A known user whose events are newer than the list, whose list is missing or stale, or who
  sends context, gets real-time inference (fold-in of training items plus recent events).
* A new user gets fold-in of pushed and request items, else the profile vector, else popular.
* When the online store is unavailable, everyone gets the in-memory popularity list (minus
  what is known to be seen), flagged ``popular`` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from recommender.contract.published import LiveLists
from recommender.data.lists import split_source_names
from recommender.featurestore.layout import ViewValues, age_seconds
from recommender.featurestore.names import (
    SLOTS,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_RECENT_ITEMS,
    list_view,
)
from recommender.serving import paths
from recommender.serving.diversity import POOL, diversify
from recommender.serving.paths import Ranked
from recommender.serving.rerank import RankingItems, Steps, inline
from recommender.serving.rules import Catalog, Rules
from recommender.training.artifacts import ModelBundle
from recommender.training.manifest import PathEvidence

RECENT_VIEW = USER_RECENT_ITEMS
PROFILE_VIEW = USER_PROFILE
# user_activity: the ranker's user features, in the same HMGET
USER_VIEWS = (*(list_view(slot) for slot in SLOTS), RECENT_VIEW, PROFILE_VIEW, USER_ACTIVITY)
RANKER_USER_VIEWS = (USER_ACTIVITY, PROFILE_VIEW)
PROFILE_KEYS = ("age", "gender", "occupation")


@dataclass(frozen=True)
class Request:
    user_id: str | None
    k: int
    rules: Rules = field(default_factory=Rules)
    recent_item_ids: tuple[str, ...] = ()
    profile: Mapping[str, Any] | None = None
    explain: bool = False


@dataclass
class Context:
    """What the online store knows about a user (decoded Feast views)."""

    list_item_ids: list[str] = field(default_factory=list)
    list_scores: list[float] = field(default_factory=list)
    list_sources: list[int] = field(default_factory=list)  # per item: a retriever bit mask
    list_source_names: list[str] = field(default_factory=list)  # the masks' bits, in order
    list_model_version: str | None = None
    list_run_id: str | None = None
    list_ts: datetime | None = None
    recent_item_ids: list[str] = field(default_factory=list)
    recent_ts: datetime | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    profile_ts: datetime | None = None
    ranker_views: dict[str, ViewValues] = field(default_factory=dict)  # the ranker's user views

    def without_list(self) -> Context:
        """The same context without the stored list (another model ranks in real time)."""
        return replace(
            self,
            list_item_ids=[],
            list_scores=[],
            list_sources=[],
            list_source_names=[],
            list_model_version=None,
            list_run_id=None,
            list_ts=None,
        )

    @classmethod
    def from_views(cls, views: Mapping[str, ViewValues], live: LiveLists | None) -> Context:
        """``live`` names the served list slot and run; a list from any other run (the slot
        being rewritten by the next run, or a user that run did not score) is ignored."""
        ctx = cls()
        rec = views.get(live.view) if live is not None else None
        if rec and rec.get("rec_item_ids") and rec.get("run_id") == live.run_id:  # type: ignore[union-attr]
            ctx.list_item_ids = [str(i) for i in rec["rec_item_ids"]]
            ctx.list_scores = [float(s) for s in rec.get("rec_scores") or []]
            ctx.list_sources = [int(m) for m in rec.get("rec_sources") or []]
            ctx.list_source_names = split_source_names(rec.get("rec_source_names"))
            ctx.list_model_version, ctx.list_run_id = rec.get("model_version"), rec.get("run_id")
            ctx.list_ts = rec["_ts"]
        if (recent := views.get(RECENT_VIEW)) and recent.get("recent_item_ids"):
            ctx.recent_item_ids = [str(i) for i in recent["recent_item_ids"]]
            ctx.recent_ts = recent["_ts"]
        ctx.ranker_views = {v: dict(views[v]) for v in RANKER_USER_VIEWS if views.get(v)}
        if prof := views.get(PROFILE_VIEW):
            ctx.profile = {k: prof[k] for k in PROFILE_KEYS if prof.get(k)}
            ctx.profile_ts = prof["_ts"] if ctx.profile else None
        return ctx


def _freshness(ctx: Context, now: datetime, used_list: bool) -> dict[str, float]:
    ages = {
        "list": age_seconds(ctx.list_ts, now) if used_list else None,
        "recent_items": age_seconds(ctx.recent_ts, now),
        "profile": age_seconds(ctx.profile_ts, now),
    }
    return {k: round(v, 3) for k, v in ages.items() if v is not None}


def recommend_steps(
    bundle: ModelBundle,
    catalog: Catalog,
    req: Request,
    ctx: Context | None,
    now: datetime,
    list_ttl: timedelta,
    unavailable_reason: str = "online store unavailable",
    ranking_items: RankingItems | None = None,
    diversity: float = 0.0,
) -> Steps[tuple[Ranked, dict[str, float]]]:
    """The served list and the age (seconds) of each online feature it used. With
    ``ranking_items`` (and a ranker in the bundle) the real-time path retrieves and ranks: the
    request's two-stage job is yielded and its ranking sent back (see
    :func:`~recommender.serving.paths.realtime_steps`; :func:`recommend` ranks on the spot).
    ``diversity`` > 0: the path's first ``POOL * k`` items re-ranked by maximal marginal
    relevance (:mod:`recommender.serving.diversity`)."""
    pooled = replace(req, k=req.k * POOL) if diversity > 0 else req
    ranked, ages = yield from _decide(
        bundle, catalog, pooled, ctx, now, list_ttl, unavailable_reason, ranking_items
    )
    if diversity > 0:
        ranked = diversify(ranked, bundle.item_unit, req.k, diversity)
    return ranked, ages


def _decide(
    bundle: ModelBundle,
    catalog: Catalog,
    req: Request,
    ctx: Context | None,
    now: datetime,
    list_ttl: timedelta,
    unavailable_reason: str,
    ranking_items: RankingItems | None,
) -> Steps[tuple[Ranked, dict[str, float]]]:
    row = bundle.users.row(req.user_id) if req.user_id is not None else None
    evidence = bundle.manifest.served_paths  # paths the model's replay routes to popularity
    request_rows = bundle.items.rows(req.recent_item_ids)
    if ctx is None:  # the online store did not answer: the best path the rest allows
        known = request_rows[request_rows >= 0]
        if row is not None or known.size or req.profile:
            ranked = paths.realtime(
                bundle,
                req.k,
                list(req.recent_item_ids),
                req.profile,
                user_row=row,
                rules=req.rules.with_excluded(known),
                catalog=catalog,
            )
            inputs = "the request's items" if known.size else "the request's profile"
            if row is not None and not known.size:
                inputs = "the user's model vector"
            ranked.reason = f"{unavailable_reason}; ranked in real time from {inputs}"
        else:
            exclude = np.concatenate([paths.seen_rows(bundle, row), request_rows])
            ranked = paths.popular(bundle, req.k, exclude, req.rules, catalog)
            ranked.reason = unavailable_reason
        _explain(bundle, req, ranked, row, request_rows)
        return ranked, {}
    recent = list(dict.fromkeys([*req.recent_item_ids, *ctx.recent_item_ids]))
    recent_rows = bundle.items.rows(recent)
    rules = req.rules.with_excluded(recent_rows[recent_rows >= 0])
    # a list another model version wrote is never served beside this one (a hot swap's moment
    # between model and pointer, or a pointer naming a model that cannot be loaded)
    own = ctx.list_model_version in (None, bundle.version)
    fresh = (
        bool(ctx.list_item_ids)
        and own
        and ctx.list_ts is not None
        and now - ctx.list_ts <= list_ttl
    )
    newer_events = bool(ctx.recent_ts and ctx.list_ts and ctx.recent_ts > ctx.list_ts)
    if row is not None and fresh and not newer_events and not req.recent_item_ids:
        if evidence is not None and (routed := evidence.routed("known")) is not None:
            ranked = _fallback(bundle, req, rules, catalog, paths.seen_rows(bundle, row), routed)
            _explain(bundle, req, ranked, row, recent_rows)
            return ranked, _freshness(ctx, now, used_list=False)
        stored = {
            "item_ids": ctx.list_item_ids,
            "scores": ctx.list_scores,
            "sources": ctx.list_sources,
            "source_names": ctx.list_source_names,
            "model_version": ctx.list_model_version,
            "run_id": ctx.list_run_id,
            "generated_at": ctx.list_ts,
        }
        ranked = paths.from_precomputed(bundle, stored, req.k, rules, catalog, user_row=row)
        _explain(bundle, req, ranked, row, recent_rows)
        return ranked, _freshness(ctx, now, used_list=True)
    if row is not None:
        if req.recent_item_ids:
            reason = "request context"
        elif newer_events:
            reason = "events newer than the stored list"
        elif ctx.list_item_ids and not own:
            reason = f"stored list of model {ctx.list_model_version}, not the served one"
        elif ctx.list_item_ids and not fresh:
            reason = f"stored list older than the list TTL ({int(list_ttl.total_seconds())} s)"
        else:
            reason = "no stored list"
    else:
        reason = "user unknown to the model"
    # Known users fold in recent items only when they are newer than the list (or sent now);
    # older recent items are already in the training data, and are excluded by the rules.
    fold = recent if (row is None or newer_events or req.recent_item_ids) else []
    one_stage = None  # a ranked bundle's new users the one-stage fold-in serves better
    if row is None and evidence is not None:  # a new user: the path their items (or profile) take
        path = evidence.new_user_path(int((recent_rows >= 0).sum()))
        if path is None and (req.profile or ctx.profile):
            path = "profile"
        if path is not None and (routed := evidence.routed(path)) is not None:
            ranked = _fallback(bundle, req, rules, catalog, np.zeros(0, np.int64), routed)
            _explain(bundle, req, ranked, row, recent_rows)
            return ranked, _freshness(ctx, now, used_list=False)
        one_stage = evidence.one_stage(path) if path is not None else None
    ranking = (
        paths.RankingInput(ranking_items, req.user_id or "", ctx.ranker_views, now, req.explain)
        if ranking_items is not None and one_stage is None
        else None
    )
    ranked = yield from paths.realtime_steps(
        bundle,
        req.k,
        fold,
        req.profile or ctx.profile,
        user_row=row,
        rules=rules,
        catalog=catalog,
        ranking=ranking,
    )
    ranked.reason = reason
    if one_stage is not None and bundle.ranking is not None:
        ranked.reason += f"; {one_stage.path} path served by the one-stage fold-in: {one_stage.why}"
    _explain(bundle, req, ranked, row, recent_rows)
    return ranked, _freshness(ctx, now, used_list=False)


def _fallback(
    bundle: ModelBundle,
    req: Request,
    rules: Rules,
    catalog: Catalog,
    exclude: np.ndarray,
    routed: PathEvidence,
) -> Ranked:
    """Popularity in place of a path the evidence says serves its users worse."""
    ranked = paths.popular(bundle, req.k, exclude, rules, catalog)
    ranked.reason = f"{routed.path} path routed to popularity: {routed.why}"
    return ranked


# recommend_steps with its two-stage ranking (if any) done on the spot
recommend = inline(recommend_steps)


def _explain(
    bundle: ModelBundle, req: Request, ranked: Ranked, row: int | None, recent_rows: np.ndarray
) -> None:
    """Reasons from the user's history: training items plus recent (known) items."""
    if req.explain:
        history = np.concatenate([paths.seen_rows(bundle, row), recent_rows])
        paths.explain(bundle, ranked, history)
