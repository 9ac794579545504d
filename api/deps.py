"""Dependencies as Annotated aliases; routes declare only what they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from feast import FeatureStore
from redis import Redis

from recommender.artifacts import ModelBundle
from recommender.config import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _bundle(request: Request) -> ModelBundle:
    return request.app.state.bundle


def _store(request: Request) -> FeatureStore:
    return request.app.state.store


def _redis(request: Request) -> Redis:
    return request.app.state.redis


SettingsDep = Annotated[Settings, Depends(_settings)]
BundleDep = Annotated[ModelBundle, Depends(_bundle)]
StoreDep = Annotated[FeatureStore, Depends(_store)]
RedisDep = Annotated[Redis, Depends(_redis)]
