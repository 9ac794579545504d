"""Request and response models (they become the OpenAPI schema)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from recommender.data.ids import CONTROL_CHARACTERS, ID_PATTERN, MAX_ID_LENGTH, strip_id
from recommender.events.records import EVENT_TYPES, TIME_RANGE, check_event_time

# User and item ids follow the one id rule of recommender/data/ids.py, which ingest applies
# too: 1-128 characters without control characters once the whitespace around them is
# removed. Or a JSON integer (many catalogs number their items), which is the same id as its
# decimal string everywhere: 50 and "50" are one item. The schema's pattern describes the
# text as sent (at least one character that is not blank). Event and recommendation ids are
# ID_PATTERN tokens too (no control characters), taken as sent.
ID_TEXT_PATTERN = rf"^[^{CONTROL_CHARACTERS}]*[^{CONTROL_CHARACTERS}\s][^{CONTROL_CHARACTERS}]*$"
ID_INT_MIN, ID_INT_MAX = -(2**63), 2**63 - 1


def _canonical_id(value: object) -> object:
    """A JSON integer id as its decimal string, a string without the whitespace around it
    (:func:`~recommender.data.ids.strip_id`, as ingest); booleans and floats are refused
    (``true`` or ``50.0`` are a client's mistake, not an id)."""
    if isinstance(value, bool | float):
        raise PydanticCustomError("id_type", "an id must be a string or an integer")
    if isinstance(value, int):
        if not ID_INT_MIN <= value <= ID_INT_MAX:
            raise PydanticCustomError(
                "id_range", "an integer id must fit in 64 bits (send larger ids as strings)"
            )
        return str(value)
    return strip_id(value) if isinstance(value, str) else value


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN),
    BeforeValidator(_canonical_id),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ID_LENGTH,
                    "pattern": ID_TEXT_PATTERN,
                },
                {"type": "integer", "minimum": ID_INT_MIN, "maximum": ID_INT_MAX},
            ],
            "description": "a string, or an integer (the same id as its decimal string)",
        }
    ),
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
    age: int | None = Field(None, ge=1, le=120, strict=True)
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
    explain: bool = Field(False, strict=True, description="add 'because you liked <title>' reasons")


class RecommendRequest(Filters):
    """Real-time request for a new user, a signed-out visitor, or a changed context."""

    user_id: Id | None = None
    k: int = Field(10, ge=1, le=100, strict=True)
    recent_item_ids: list[Id] = Field(default_factory=list, max_length=200)
    profile: Profile | None = None


class Item(BaseModel):
    item_id: str
    title: str
    score: float
    reason: str | None = Field(None, description="only with explain=true")
    because_item_id: str | None = None
    retrievers: list[str] | None = Field(
        None, description="two-stage path: the retrievers that proposed the item, best first"
    )
    moved_up_by: list[str] | None = Field(
        None, description="two-stage path with explain=true: ranker features that raised it most"
    )


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


_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$")


def _date_time_text(value: object) -> object:
    """Timestamps are RFC 3339 strings: a number (or a string of one) would be read as Unix
    time, seconds or milliseconds by its size, which a client rarely means."""
    if isinstance(value, datetime) or (isinstance(value, str) and not _NUMBER.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_type", "Input should be an RFC 3339 date-time string, e.g. 2024-05-01T12:00:00Z"
    )


def _plausible_time(value: datetime) -> datetime:
    return check_event_time(value, datetime.now(timezone.utc))


EventTime = Annotated[datetime, BeforeValidator(_date_time_text), AfterValidator(_plausible_time)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    item_id: Id
    event_type: EventType
    timestamp: EventTime | None = Field(
        None,
        description="RFC 3339 date-time; default: when received; UTC if naive. Accepted: "
        f"{TIME_RANGE} (RECO_MAX_EVENT_FUTURE_SECONDS, 300 s by default, may allow less); "
        "422 otherwise.",
    )
    value: float | None = Field(
        None, ge=-1e6, le=1e6, strict=True, allow_inf_nan=False, description="rating value"
    )
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


class ValidationIssue(BaseModel):
    """One reason a request was refused (the shape of FastAPI's own validation errors)."""

    loc: list[str | int] = Field(description='where, e.g. ["body", "k"]; ["request"] if global')
    msg: str
    type: str = Field(description="e.g. int_type, json_invalid, value_error")
    input: Any = Field(None, description="the offending value (NaN and Infinity as strings)")
    ctx: dict[str, Any] | None = None


class ValidationErrors(BaseModel):
    detail: list[ValidationIssue]
    unknown_item_ids: list[str] | None = Field(
        None, description="the request's item ids the served model does not know"
    )


# Answers every protected route can give besides its own (documented in the OpenAPI schema).
COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorDetail, "description": "missing or invalid X-API-Key (keys configured)"},
    413: {"model": ErrorDetail, "description": "request body over RECO_MAX_BODY_BYTES"},
    422: {
        "model": ValidationErrors,
        "description": "The request cannot be served. Either a value breaks this schema "
        "(wrong type, out of range, a non-finite number, an implausible timestamp), or the body "
        "is not JSON (not UTF-8, nested too deeply: type json_invalid), or it is well-formed but "
        "names what the served model does not have: unknown item ids (listed in "
        "unknown_item_ids), an unknown item feature in include, exclude or cap, or more events "
        "than RECO_MAX_BATCH_EVENTS in one batch.",
    },
    429: {
        "model": ErrorDetail,
        "description": "rate limit, or too many failed X-API-Key attempts from this address; "
        "see the Retry-After header",
    },
    503: {"model": ErrorDetail, "description": "no model loaded yet, or the event log failed"},
}
