"""The model manifest (``<artifacts>/models/<version>/manifest.json``): one typed record of
what a version was trained on, with which parameters, how it scored, and its files' checksums.
"""

from __future__ import annotations

from typing import Any

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

    def metric(self, name: str, model: str = "als") -> float | None:
        value = (self.metrics.get(model) or {}).get(name)
        return None if value is None else float(value)

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.metrics.get("protocol") or {})
