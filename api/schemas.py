"""Request and response models (they become the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recommender.events.records import EVENT_TYPES

# Printable ids of 1-128 characters (no control characters).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=ID_PATTERN)
]
FeatureValue = Annotated[
    str, StringConstraints(min_length=3, max_length=200, pattern=r"^[^:\x00-\x1f]+:[^\x00-\x1f]+$")
]
EventType = Literal["view", "click", "like", "purchase", "rating", "dislike"]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]
MAX_LIST = 500


class Profile(BaseModel):
    """What a signed-out or brand-new user may tell us about themselves."""

    model_config = ConfigDict(extra="forbid")
    age: int | None = Field(None, ge=1, le=120)
    gender: Annotated[str, StringConstraints(max_length=32)] | None = None
    occupation: Annotated[str, StringConstraints(max_length=64)] | None = None


class Filters(BaseModel):
    """Rules applied to every path (also available as query parameters on GET routes)."""

    model_config = ConfigDict(extra="forbid")
    exclude_item_ids: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    include: list[FeatureValue] = Field(
        default_factory=list, max_length=50, description="feature:value, e.g. genres:Comedy"
    )
    exclude: list[FeatureValue] = Field(default_factory=list, max_length=50)
    cap: (
        Annotated[str, StringConstraints(max_length=100, pattern=r"^[^:]+:[1-9][0-9]{0,2}$")] | None
    ) = Field(None, description="feature:N - at most N items per value, e.g. genres:2")
    explain: bool = Field(False, description="add 'because you liked <title>' reasons")


class RecommendRequest(Filters):
    """Real-time request for a new user, a signed-out visitor, or a changed context."""

    user_id: Id | None = None
    k: int = Field(10, ge=1, le=100)
    recent_item_ids: list[Id] = Field(default_factory=list, max_length=200)
    profile: Profile | None = None


class Item(BaseModel):
    item_id: str
    title: str
    score: float
    reason: str | None = Field(None, description="only with explain=true")
    because_item_id: str | None = None


class RecommendResponse(BaseModel):
    user_id: str | None
    source: Literal["precomputed", "realtime", "popular"]
    strategy: str = Field(description="nightly_list, user_vector, fold_in, profile, popularity")
    reason: str | None = Field(None, description="why this path served the request")
    model_version: str
    run_id: str | None = None
    generated_at: datetime | None = None
    feature_age_seconds: dict[str, float] = Field(
        default_factory=dict, description="age of the online features used (list, events)"
    )
    items: list[Item]
    used: dict[str, list[str]] = Field(
        default_factory=dict, description="Inputs of the real-time path."
    )
    recommendation_id: str = Field(
        description="send it back with events about these items (attribution)"
    )
    experiment: str | None = Field(None, description="the running experiment, if any")
    variant: str | None = Field(None, description="the user's variant in that experiment")


class SimilarResponse(BaseModel):
    item_id: str
    title: str
    source: Literal["realtime"]
    strategy: Literal["similar_items"]
    model_version: str
    items: list[Item]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    item_id: Id
    event_type: EventType
    timestamp: datetime | None = Field(None, description="default: when received; UTC if naive")
    value: float | None = Field(None, ge=-1e6, le=1e6, description="rating value")
    event_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)] | None
    ) = Field(None, description="idempotency key; generated when absent")
    recommendation_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)] | None
    ) = Field(None, description="the `recommendation_id` of the response this event answers")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1)


class EventAck(BaseModel):
    accepted: int
    event_ids: list[str]
    online: bool = Field(description="pushed to the online store (else logged only)")
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    model_version: str | None
    redis: bool
    detail: str | None = None
    lists_run_id: str | None = Field(None, description="the nightly run whose lists are served")
    lists_slot: str | None = Field(None, description="the live list slot (a or b)")


class ErrorDetail(BaseModel):
    detail: str


# Answers every protected route can give besides its own (documented in the OpenAPI schema).
COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorDetail, "description": "missing or invalid X-API-Key (keys configured)"},
    413: {"model": ErrorDetail, "description": "request body over RECO_MAX_BODY_BYTES"},
    429: {"model": ErrorDetail, "description": "rate limit; see the Retry-After header"},
    503: {"model": ErrorDetail, "description": "no model loaded yet, or the event log failed"},
}
