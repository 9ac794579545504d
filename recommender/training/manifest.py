"""The model manifest (``<artifacts>/models/<version>/manifest.json``): one typed record of
what a version was trained on, with which parameters, how it scored, and its files' checksums.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DataRange(BaseModel):
    """The training data of a version."""

    model_config = ConfigDict(extra="ignore")

    interactions: int = 0
    users: int = 0
    items: int = 0
    first_event: str | None = None
    last_event: str | None = None
    cutoff: str | None = None
    features_as_of: str | None = None


Route = Literal["model", "one_stage", "popular"]  # what serves a path (PathEvidence.route)
MIN_PATH_USERS = 20  # fewer users: too little evidence to route a path or to compare it


class PathEvidence(BaseModel):
    """What one serving path gave the users who took it on a time-respecting replay, against
    that path's own popularity fallback on the same users and truth (paired bootstrap 95%
    interval of the NDCG@10 difference), and the route it implies: a path that loses to its
    fallback is served by the fallback."""

    model_config = ConfigDict(extra="ignore")

    path: str  # known | new:1 | new:3 | new:5 | profile
    users: int
    ndcg: float
    fallback_ndcg: float
    ratio: float | None  # None when popularity scored 0
    diff_low: float
    diff_high: float
    # model: the path as built; one_stage: a ranked bundle's new users get the one-stage
    # fold-in instead of the two-stage path (it scored better); popular: the fallback
    route: Route = "model"
    one_stage_ndcg: float | None = None  # a ranked bundle's new users: the one-stage fold-in
    # beyond accuracy, the path's lists then the fallback's: catalog coverage@k, novelty
    # (mean self-information), intra-list diversity (cosine distance of the item vectors)
    beyond: dict[str, float] = Field(default_factory=dict)

    @property
    def served_ndcg(self) -> float:
        """What the path's users get as served: the model's, the one-stage fold-in's, or
        popularity's, as routed."""
        if self.route == "popular":
            return self.fallback_ndcg
        if self.route == "one_stage" and self.one_stage_ndcg is not None:
            return self.one_stage_ndcg
        return self.ndcg

    @property
    def served_ratio(self) -> float | None:
        """What the path's users get as served, relative to popularity on the same users and
        truth (1 when routed): comparable across replays with different cut-offs, where the
        absolute NDCG is not."""
        if self.route == "popular":
            return 1.0
        if self.route == "one_stage" and self.one_stage_ndcg is not None:
            return self.one_stage_ndcg / self.fallback_ndcg if self.fallback_ndcg > 0 else None
        return self.ratio

    @property
    def why(self) -> str:
        one_stage = (
            f", the one-stage fold-in {self.one_stage_ndcg:.4f}"
            if self.one_stage_ndcg is not None
            else ""
        )
        return (
            f"the {self.path} path scored NDCG@10 {self.ndcg:.4f} against popularity's "
            f"{self.fallback_ndcg:.4f}{one_stage} ({self.users} users) on the replay"
        )


class ServedPaths(BaseModel):
    """The per-path evidence of a version: its replay's cut-off and each path's result."""

    model_config = ConfigDict(extra="ignore")

    cutoff: str
    k: int = 10
    paths: dict[str, PathEvidence] = Field(default_factory=dict)
    # the new users' popularity blend the replay was run with, and the earlier cut-off's
    # NDCG@10 of each weight tried (how it was chosen)
    popularity_blend: float = 0.0
    blend_scores: dict[str, float] = Field(default_factory=dict)

    def new_user_path(self, known_items: int) -> str | None:
        """The ``new:n`` path a new user with ``known_items`` recent items takes: the largest
        replayed ``n`` not above it (None without items or without such evidence)."""
        ns = [int(p.split(":")[1]) for p in self.paths if p.startswith("new:")]
        fitting = [n for n in sorted(ns) if n <= known_items]
        return f"new:{fitting[-1]}" if known_items > 0 and fitting else None

    def routed(self, path: str) -> PathEvidence | None:
        """The evidence that sends ``path`` to popularity, or None when the model serves it."""
        evidence = self.paths.get(path)
        return evidence if evidence is not None and evidence.route == "popular" else None

    def one_stage(self, path: str) -> PathEvidence | None:
        """The evidence that serves ``path`` (a ranked bundle's new users) by the one-stage
        fold-in instead of the two-stage path, or None."""
        evidence = self.paths.get(path)
        return evidence if evidence is not None and evidence.route == "one_stage" else None


class FutureTuning(BaseModel):
    """How ALS's parameters were chosen: the cut-off, the returning users judged, every point's
    NDCG@k and popularity's on the same users."""

    model_config = ConfigDict(extra="ignore")

    cutoff: str
    users: int
    k: int = 10
    best: dict[str, float] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)  # "alpha=2,regularization=100"
    popularity: float = 0.0


class RankerChoice(BaseModel):
    """Whether `reco train` kept the two-stage ranker it was asked for, and why: it ships only
    when its known users' lists serve them at least as well as the one-stage bundle's on the
    replay (NDCG@10 of each, as served)."""

    model_config = ConfigDict(extra="ignore")

    kept: bool
    reason: str
    ranked_known: float | None = None
    one_stage_known: float | None = None


class ModelManifest(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    version: str = ""
    code_version: str | None = None
    created_at: str | None = None
    model: str = "als"
    params: dict[str, Any] = Field(default_factory=dict)
    params_source: dict[str, Any] = Field(default_factory=dict)
    profile_model: dict[str, Any] = Field(default_factory=dict)
    data: DataRange = Field(default_factory=DataRange)
    # {"protocol": the hold-out's split summary, "<model>": {"ndcg@10": ..., ...}}
    metrics: dict[str, Any] = Field(default_factory=dict)
    index: dict[str, Any] = Field(default_factory=dict)  # ItemIndex.info
    train_seconds: float | None = None
    files: dict[str, str] = Field(default_factory=dict)  # name -> sha256
    # each serving path against its popularity fallback on a replay inside the training data
    served_paths: ServedPaths | None = None
    # a new user's fold-in scores blended with popularity: (1 - w) z(cosine) + w z(log pop),
    # w chosen on a replay inside the training data (0: fold-in alone)
    popularity_blend: float = 0.0
    # ALS's regularization and alpha chosen on the future inside the training data
    future_tuning: FutureTuning | None = None
    # with RECO_RANKER: whether the ranker shipped, from the replay of both bundles
    ranker_choice: RankerChoice | None = None

    def metric(self, name: str, model: str = "als") -> float | None:
        value = (self.metrics.get(model) or {}).get(name)
        return None if value is None else float(value)

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.metrics.get("protocol") or {})
