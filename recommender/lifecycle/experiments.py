"""A/B experiments and shadow runs as data (pure): definitions, sticky assignment, canary ramps.

The serving configuration of a project is one JSON document in Redis
(``reco:{<project>}:serving``): at most one running experiment and at most one shadow
candidate. APIs poll it together with the live-lists pointer, load the models it names, and
only then apply it, so no request is ever assigned to a variant whose model is not loaded.

Assignment: a user's bucket is ``blake2b(salt:user_id) mod 10000``; variants own consecutive
bucket ranges in their listed order. Deterministic (any API process agrees) and sticky. List
the control first and the candidate last: the candidate then owns the *top* of the range, and
a canary ramp 5% -> 25% -> 50% -> 100% only ever adds users to it (and dropping back only
removes the newest ones).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from recommender.errors import InvalidRequest
from recommender.featurestore.keys import project_key

BUCKETS = 10_000
EXPERIMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also a file name
CANARY_STEPS = (0.0, 5.0, 25.0, 50.0, 100.0)
MODES = ("default", "realtime")


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float  # percent of users
    model_version: str | None = None  # None: whatever production serves
    mode: str = "default"  # "realtime": skip the stored list (a serving option)


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]
    salt: str = field(default_factory=lambda: secrets.token_hex(4))
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    status: str = "running"
    ramp: tuple[dict[str, Any], ...] = ()  # every weight change: {"at", "weights"}

    def __post_init__(self) -> None:
        check(self)

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InvalidRequest(f"experiment {self.name!r} has no variant {name!r}")

    def assign(self, user_id: str) -> Variant:
        return assign(self, user_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(
            name=data["name"],
            variants=tuple(Variant(**v) for v in data["variants"]),
            salt=data["salt"],
            started_at=data["started_at"],
            status=data.get("status", "running"),
            ramp=tuple(data.get("ramp", ())),
        )


def check(exp: Experiment) -> None:
    if not re.match(EXPERIMENT_NAME, exp.name):
        raise InvalidRequest(f"experiment name {exp.name!r} must match {EXPERIMENT_NAME}")
    names = [v.name for v in exp.variants]
    if len(exp.variants) < 2:
        raise InvalidRequest("an experiment needs at least two variants")
    if len(set(names)) != len(names):
        raise InvalidRequest(f"variant names must be unique: {names}")
    for v in exp.variants:
        if not 0 <= v.weight <= 100:
            raise InvalidRequest(f"variant {v.name}: weight {v.weight} is not within 0..100")
        if v.mode not in MODES:
            raise InvalidRequest(f"variant {v.name}: mode must be one of {MODES}")
    total = sum(v.weight for v in exp.variants)
    if abs(total - 100) > 1e-6:
        raise InvalidRequest(f"variant weights must add up to 100, not {total:g}")


def bucket(salt: str, user_id: str) -> int:
    digest = hashlib.blake2b(f"{salt}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def assign(exp: Experiment, user_id: str) -> Variant:
    b = bucket(exp.salt, user_id)
    upper = 0.0
    for v in exp.variants:
        upper += v.weight * BUCKETS / 100
        if b < round(upper):
            return v
    return next(v for v in reversed(exp.variants) if v.weight > 0)


def with_weight(exp: Experiment, name: str, weight: float) -> Experiment:
    """``name`` at ``weight``; the other variants share the rest in their current proportions
    (equally when they are all at 0)."""
    exp.variant(name)
    if not 0 <= weight <= 100:
        raise InvalidRequest(f"weight {weight} is not within 0..100")
    others = [v for v in exp.variants if v.name != name]
    rest = sum(v.weight for v in others)
    variants = []
    for v in exp.variants:
        if v.name == name:
            variants.append(replace(v, weight=weight))
        else:
            share = v.weight / rest if rest > 0 else 1 / len(others)
            variants.append(replace(v, weight=round((100 - weight) * share, 6)))
    # rounding: the last of the others absorbs the remainder so the sum stays exactly 100
    drift = 100 - sum(v.weight for v in variants)
    last = max(i for i, v in enumerate(variants) if v.name != name)
    variants[last] = replace(variants[last], weight=round(variants[last].weight + drift, 6))
    step = {
        "at": datetime.now(timezone.utc).isoformat(),
        "weights": {v.name: v.weight for v in variants},
    }
    return replace(exp, variants=tuple(variants), ramp=(*exp.ramp, step))


def canary_step(current: float, direction: int) -> float:
    """The next (+1) or previous (-1) canary weight from :data:`CANARY_STEPS`."""
    if direction > 0:
        return next((s for s in CANARY_STEPS if s > current + 1e-9), CANARY_STEPS[-1])
    return next((s for s in reversed(CANARY_STEPS) if s < current - 1e-9), CANARY_STEPS[0])


@dataclass(frozen=True)
class Shadow:
    model_version: str
    sample: float = 0.1  # share of requests also scored by the candidate

    def __post_init__(self) -> None:
        if not 0 < self.sample <= 1:
            raise InvalidRequest(f"shadow sample must be within (0, 1], not {self.sample}")

    def sampled(self, recommendation_id: str) -> bool:
        return bucket("shadow", recommendation_id) < self.sample * BUCKETS


@dataclass(frozen=True)
class ServingConfig:
    experiment: Experiment | None = None
    shadow: Shadow | None = None
    updated_at: str = ""

    def model_versions(self) -> set[str]:
        """Every model version this configuration needs loaded (besides production)."""
        out = {v.model_version for v in self.experiment.variants} if self.experiment else set()
        if self.shadow:
            out.add(self.shadow.model_version)
        return {v for v in out if v}

    def to_json(self) -> str:
        return json.dumps(
            {
                "experiment": self.experiment.to_dict() if self.experiment else None,
                "shadow": asdict(self.shadow) if self.shadow else None,
                "updated_at": self.updated_at or datetime.now(timezone.utc).isoformat(),
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, raw: bytes | str | None) -> ServingConfig:
        if not raw:
            return cls()
        data = json.loads(raw)
        exp = data.get("experiment")
        shadow = data.get("shadow")
        return cls(
            experiment=Experiment.from_dict(exp) if exp else None,
            shadow=Shadow(**shadow) if shadow else None,
            updated_at=data.get("updated_at", ""),
        )


def serving_key(project: str) -> str:
    """The serving configuration's key, hash-tagged like every project key (APIs read it in
    one ``MGET`` with the list pointer): ``reco:{<project>}:serving``."""
    return project_key(project, "serving")
