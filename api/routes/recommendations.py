"""GET/POST /recommendations: the hybrid of precomputed (warm) and real-time (cold) paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import BundleDep, StoreDep
from api.schemas import Id, Item, RecommendRequest, RecommendResponse
from recommender import serving
from recommender import store as feast_io
from recommender.artifacts import ModelBundle
from recommender.serving import Ranked

router = APIRouter(tags=["recommendations"])


def _response(
    bundle: ModelBundle, user_id: str | None, ranked: Ranked, k: int
) -> RecommendResponse:
    titles = bundle.titles
    return RecommendResponse(
        user_id=user_id,
        source=ranked.source,  # type: ignore[arg-type]
        strategy=ranked.strategy,
        model_version=ranked.model_version,
        run_id=ranked.run_id,
        generated_at=ranked.generated_at,
        items=[
            Item(item_id=i, title=str(titles.get(i, i)), score=s)
            for i, s in zip(ranked.item_ids[:k], ranked.scores[:k], strict=True)
        ],
        used=ranked.used,
    )


@router.get("/recommendations", response_model=RecommendResponse)
def get_recommendations(
    bundle: BundleDep,
    store: StoreDep,
    user_id: Annotated[Id, Query(description="Your user id (known or new).")],
    k: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
) -> RecommendResponse:
    """Recommendations for a user: the nightly list if there is one, else real time."""
    row = bundle.users.row(user_id)
    if row is not None:
        stored = feast_io.read_precomputed(store, user_id)
        ranked = (
            serving.from_precomputed(bundle, stored, k)
            if stored
            else serving.known_user(bundle, row, k)
        )
        return _response(bundle, user_id, ranked, k)
    context = feast_io.read_realtime_context(store, user_id)
    ranked = serving.realtime(bundle, k, context["recent_item_ids"], context["profile"])
    return _response(bundle, user_id, ranked, k)


@router.post("/recommendations", response_model=RecommendResponse)
def post_recommendations(
    bundle: BundleDep, store: StoreDep, body: RecommendRequest
) -> RecommendResponse:
    """Real-time recommendations from recent items and/or a profile (new or signed-out user)."""
    recent = serving.check_items(bundle, body.recent_item_ids)
    profile = body.profile.model_dump(exclude_none=True) if body.profile else {}
    row = None
    if body.user_id is not None:
        row = bundle.users.row(body.user_id)
        context = feast_io.read_realtime_context(store, body.user_id)
        if row is None:  # pushed events count for users the model has not seen
            recent = list(dict.fromkeys(recent + context["recent_item_ids"]))
        profile = profile or context["profile"]
    ranked = serving.realtime(bundle, body.k, recent, profile, user_row=row)
    return _response(bundle, body.user_id, ranked, body.k)
