"""Request and response models (they become the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class Profile(BaseModel):
    """What a signed-out or brand-new user may tell us about themselves."""

    model_config = ConfigDict(extra="forbid")
    age: int | None = Field(None, ge=1, le=120)
    gender: Annotated[str, StringConstraints(max_length=32)] | None = None
    occupation: Annotated[str, StringConstraints(max_length=64)] | None = None


class RecommendRequest(BaseModel):
    """Real-time request for a new user, a signed-out visitor, or a changed context."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = None
    k: int = Field(10, ge=1, le=100)
    recent_item_ids: list[Id] = Field(default_factory=list, max_length=200)
    profile: Profile | None = None


class Item(BaseModel):
    item_id: str
    title: str
    score: float


class RecommendResponse(BaseModel):
    user_id: str | None
    source: Literal["precomputed", "realtime", "popular"]
    strategy: str = Field(description="nightly_list, user_vector, fold_in, profile or popularity")
    model_version: str
    run_id: str | None = None
    generated_at: datetime | None = None
    items: list[Item]
    used: dict[str, list[str]] = Field(
        default_factory=dict, description="Inputs of the real-time path."
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    model_version: str | None
    redis: bool
    detail: str | None = None
