"""GET/POST /recommendations: the hybrid of precomputed (warm) and real-time (cold) paths."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import render
from api.deps import FiltersDep, RuntimeDep, rules_for
from api.runtime import Runtime, Served
from api.schemas import COMMON_ERRORS, Filters, Id, RecommendRequest, RecommendResponse
from recommender.errors import FeatureStoreUnavailable
from recommender.serving import hybrid, paths

router = APIRouter(tags=["recommendations"], responses=COMMON_ERRORS)
DOC: dict[int | str, dict[str, Any]] = {200: {"model": RecommendResponse}}


def _variant(
    rt: Runtime, production: Served, user_id: str | None
) -> tuple[Served, str | None, str | None, bool]:
    """The model serving this user, the experiment and variant, and whether to skip the
    stored list (it was computed by production's model, or the variant asks for real time)."""
    exp = rt.config.experiment
    if exp is None or user_id is None:
        return production, None, None, False
    v = exp.assign(user_id)
    target = rt.models.get(v.model_version) if v.model_version else production
    if target is None:  # not loaded (yet): production serves, outside the experiment
        rt.metrics.errors.labels("variant_model_not_loaded").inc()
        return production, None, None, False
    other_model = target.bundle.version != production.bundle.version
    return target, exp.name, v.name, other_model or v.mode == "realtime"


def _shadow(
    rt: Runtime,
    req: hybrid.Request,
    filters: Filters,
    ctx: hybrid.Context | None,
    now: datetime,
    live: paths.Ranked,
    rid: str,
) -> None:
    shadow = rt.config.shadow
    if shadow is None or rt.shadow is None or not shadow.sampled(rid):
        return
    candidate = rt.models.get(shadow.model_version)
    if candidate is None or candidate.bundle.version == live.model_version:
        return
    ttl = timedelta(seconds=rt.settings.list_ttl_seconds)
    bare = ctx.without_list() if ctx is not None else None

    def score() -> paths.Ranked:
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


async def _serve(
    rt: Runtime,
    user_id: str | None,
    k: int,
    filters: Filters,
    recent: tuple[str, ...] = (),
    profile: dict[str, object] | None = None,
) -> Response:
    production, online = rt.require_served()
    served, experiment, variant, skip_list = _variant(rt, production, user_id)
    bundle, catalog = served.bundle, served.catalog
    rules = rules_for(filters, bundle.items, catalog)
    req = hybrid.Request(user_id, k, rules, recent, profile, filters.explain)
    ctx, down = None, ""
    if user_id is not None:
        try:
            ctx = hybrid.Context.from_views(await online.user_views(user_id), rt.live)
        except FeatureStoreUnavailable as exc:
            down = str(exc)
    else:
        ctx = hybrid.Context()
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    ranked, ages = hybrid.recommend(
        bundle,
        catalog,
        req,
        ctx.without_list() if ctx is not None and skip_list else ctx,
        now,
        timedelta(seconds=rt.settings.list_ttl_seconds),
        unavailable_reason=down or "online store unavailable",
    )
    if skip_list and ranked.source == "realtime":
        ranked.reason = f"experiment {experiment}, variant {variant}: ranked in real time"
    m = rt.metrics
    m.path_latency.labels(ranked.source).observe(time.perf_counter() - t0)
    m.served.labels(ranked.source, ranked.strategy).inc()
    if down:
        m.fallbacks.labels("online_store_unavailable").inc()
    elif ranked.source == "popular":
        m.fallbacks.labels("nothing_known").inc()
    for name, age in ages.items():
        (m.list_age if name == "list" else m.feature_age.labels(name)).observe(age)
    rid = uuid.uuid4().hex
    if rt.exposures is not None:
        rt.exposures.add(
            {
                "recommendation_id": rid,
                "ts": now,
                "user_id": user_id,
                "experiment": experiment,
                "variant": variant,
                "model_version": ranked.model_version,
                "source": ranked.source,
                "item_ids": list(ranked.item_ids),
            }
        )
    _shadow(rt, req, filters, ctx, now, ranked, rid)
    lineage = {"recommendation_id": rid, "experiment": experiment, "variant": variant}
    return render.recommendation(ranked, user_id, served.titles, ages, lineage)


@router.get("/recommendations", response_class=Response, responses=DOC)
async def get_recommendations(
    rt: RuntimeDep,
    filters: FiltersDep,
    user_id: Annotated[Id, Query(description="Your user id (known or new).")],
    k: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
) -> Response:
    """Recommendations for a user: the nightly list if there is a fresh one and no newer
    events, else real time; the in-memory popularity list when the online store is down."""
    return await _serve(rt, user_id, k, filters)


@router.post("/recommendations", response_class=Response, responses=DOC)
async def post_recommendations(rt: RuntimeDep, body: RecommendRequest) -> Response:
    """Real-time recommendations from recent items and/or a profile (new or signed-out user)."""
    bundle, _, _ = rt.require()  # validates items against production's catalog
    recent = tuple(paths.check_items(bundle, body.recent_item_ids))
    profile = body.profile.model_dump(exclude_none=True) if body.profile else None
    return await _serve(rt, body.user_id, body.k, body, recent, profile)
