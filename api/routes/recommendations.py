"""GET/POST /recommendations: the hybrid of precomputed (warm) and real-time (cold) paths."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import render
from api.deps import FiltersDep, RuntimeDep
from api.recommend import Answer, recommend
from api.schemas import COMMON_ERRORS, Id, RecommendRequest, RecommendResponse
from recommender.serving import paths

router = APIRouter(tags=["recommendations"], responses=COMMON_ERRORS)
DOC: dict[int | str, dict[str, Any]] = {200: {"model": RecommendResponse}}


def _render(answer: Answer, user_id: str | None) -> Response:
    return render.recommendation(answer.ranked, user_id, answer.titles, answer.ages, answer.lineage)


@router.get("/recommendations", response_class=Response, responses=DOC)
async def get_recommendations(
    rt: RuntimeDep,
    filters: FiltersDep,
    user_id: Annotated[Id, Query(description="Your user id (known or new).")],
    k: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
) -> Response:
    """Recommendations for a user: the nightly list if there is a fresh one and no newer
    events, else real time; when the online store is down, real time from the model's
    vector of a known user, popularity for anyone else."""
    return _render(await recommend(rt, user_id, k, filters), user_id)


@router.post("/recommendations", response_class=Response, responses=DOC)
async def post_recommendations(rt: RuntimeDep, body: RecommendRequest) -> Response:
    """Real-time recommendations from recent items and/or a profile (new or signed-out user)."""
    bundle, _, _ = rt.require()  # validates items against production's catalog
    recent = tuple(paths.check_items(bundle, body.recent_item_ids))
    profile = body.profile.model_dump(exclude_none=True) if body.profile else None
    answer = await recommend(rt, body.user_id, body.k, body, recent, profile)
    return _render(answer, body.user_id)
