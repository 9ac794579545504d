"""Experiments and shadow runs at request time: which model serves a user (sticky variant
assignment from the serving configuration), the exposure record of every response, and the
sampled shadow scoring handed to the :class:`~api.exposures.ShadowRunner` off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from api.deps import rules_for
from api.runtime import Runtime, Served
from api.schemas import Filters
from recommender.serving import hybrid
from recommender.serving.paths import Ranked


@dataclass(frozen=True)
class Assignment:
    """The model serving this request, and whether its stored list may be used (the lists
    belong to production's model; a variant may also ask for real time)."""

    served: Served
    experiment: str | None = None
    variant: str | None = None
    skip_list: bool = False


def assign(rt: Runtime, production: Served, user_id: str | None) -> Assignment:
    exp = rt.config.experiment
    if exp is None or user_id is None:
        return Assignment(production)
    v = exp.assign(user_id)
    target = rt.models.get(v.model_version) if v.model_version else production
    if target is None:  # not loaded (yet): production serves, outside the experiment
        rt.metrics.errors.labels("variant_model_not_loaded").inc()
        return Assignment(production)
    other_model = target.bundle.version != production.bundle.version
    return Assignment(target, exp.name, v.name, other_model or v.mode == "realtime")


def record_exposure(
    rt: Runtime, rid: str, now: datetime, user_id: str | None, a: Assignment, ranked: Ranked
) -> None:
    rt.exposures.add(
        {
            "recommendation_id": rid,
            "ts": now,
            "user_id": user_id,
            "experiment": a.experiment,
            "variant": a.variant,
            "model_version": ranked.model_version,
            "source": ranked.source,
            "item_ids": list(ranked.item_ids),
        }
    )


def submit_shadow(
    rt: Runtime,
    req: hybrid.Request,
    filters: Filters,
    ctx: hybrid.Context | None,
    now: datetime,
    live: Ranked,
    rid: str,
) -> None:
    """Score a sampled request again with the shadow candidate, in the runner's thread."""
    shadow = rt.config.shadow
    if shadow is None or not shadow.sampled(rid):
        return
    candidate = rt.models.get(shadow.model_version)
    if candidate is None or candidate.bundle.version == live.model_version:
        return
    ttl = timedelta(seconds=rt.settings.api.list_ttl_seconds)
    bare = ctx.without_list() if ctx is not None else None

    def score() -> Ranked:
        rules = rules_for(filters, candidate.bundle.items, candidate.catalog)
        shadow_req = hybrid.Request(req.user_id, req.k, rules, req.recent_item_ids, req.profile)
        return hybrid.recommend(candidate.bundle, candidate.catalog, shadow_req, bare, now, ttl)[0]

    record = {
        "recommendation_id": rid,
        "ts": now,
        "user_id": req.user_id,
        "live_model": live.model_version,
        "live_source": live.source,
        "live_item_ids": list(live.item_ids),
        "shadow_model": candidate.bundle.version,
    }
    rt.shadow.submit(score, live, record)
