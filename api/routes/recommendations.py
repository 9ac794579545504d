"""GET/POST /recommendations: the hybrid of precomputed (warm) and real-time (cold) paths."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import render
from api.deps import FiltersDep, RuntimeDep, rules_for
from api.runtime import Runtime
from api.schemas import COMMON_ERRORS, Filters, Id, RecommendRequest, RecommendResponse
from recommender import hybrid, serving
from recommender.errors import FeatureStoreUnavailable

router = APIRouter(tags=["recommendations"], responses=COMMON_ERRORS)
DOC: dict[int | str, dict[str, Any]] = {200: {"model": RecommendResponse}}


async def _serve(
    rt: Runtime,
    user_id: str | None,
    k: int,
    filters: Filters,
    recent: tuple[str, ...] = (),
    profile: dict[str, object] | None = None,
) -> Response:
    bundle, catalog, online = rt.require()
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
        ctx,
        now,
        timedelta(seconds=rt.settings.list_ttl_seconds),
        unavailable_reason=down or "online store unavailable",
    )
    m = rt.metrics
    m.path_latency.labels(ranked.source).observe(time.perf_counter() - t0)
    m.served.labels(ranked.source, ranked.strategy).inc()
    if down:
        m.fallbacks.labels("online_store_unavailable").inc()
    elif ranked.source == "popular":
        m.fallbacks.labels("nothing_known").inc()
    for name, age in ages.items():
        (m.list_age if name == "list" else m.feature_age.labels(name)).observe(age)
    return render.recommendation(ranked, user_id, rt.titles, ages)


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
    bundle, _, _ = rt.require()
    recent = tuple(serving.check_items(bundle, body.recent_item_ids))
    profile = body.profile.model_dump(exclude_none=True) if body.profile else None
    return await _serve(rt, body.user_id, body.k, body, recent, profile)
