"""Experiment operations (``reco experiments ...``): the serving configuration in Redis, a copy
of every experiment under ``<artifacts>/experiments/<name>.json`` (reports outlive Redis), and
the report: exposures and events from the logs, attributed, as a table and plots."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from recommender.config import Settings
from recommender.errors import InvalidRequest, NotFound
from recommender.events.log import read_events, read_records
from recommender.featurestore.repo import redis_client
from recommender.fileio import write_text_atomic
from recommender.lifecycle.attribution import (
    EXPOSURE_COLUMNS,
    attribute,
    unattributed_counts,
    variant_table,
)
from recommender.lifecycle.experiments import (
    EXPERIMENT_NAME,
    Experiment,
    ServingConfig,
    Shadow,
    Variant,
    serving_key,
    with_weight,
)
from recommender.lifecycle.monitor import clean
from recommender.training import registry

log = logging.getLogger(__name__)


def experiments_dir(settings: Settings) -> Path:
    return settings.artifacts_dir / "experiments"


def read_config(settings: Settings) -> ServingConfig:
    client = redis_client(settings, timeout=10)
    try:
        return ServingConfig.parse(client.get(serving_key(settings.feast_project)))  # type: ignore[arg-type]
    finally:
        client.close()


def write_config(settings: Settings, config: ServingConfig) -> ServingConfig:
    config = replace(config, updated_at=datetime.now(timezone.utc).isoformat())
    for version in config.model_versions():
        registry.get(settings.artifacts_dir, version)  # must exist before any API loads it
    client = redis_client(settings, timeout=10)
    try:
        client.set(serving_key(settings.feast_project), config.to_json())
    finally:
        client.close()
    if config.experiment is not None:
        save_experiment(settings, config.experiment)
    return config


def save_experiment(settings: Settings, exp: Experiment) -> None:
    path = experiments_dir(settings) / f"{exp.name}.json"
    write_text_atomic(path, json.dumps(exp.to_dict(), indent=2, sort_keys=True))


def load_experiment(settings: Settings, name: str) -> Experiment:
    if not re.match(EXPERIMENT_NAME, name):
        raise InvalidRequest(f"experiment name {name!r} must match {EXPERIMENT_NAME}")
    path = experiments_dir(settings) / f"{name}.json"
    if not path.exists():
        raise NotFound(f"no experiment {name!r} under {experiments_dir(settings)}")
    return Experiment.from_dict(json.loads(path.read_text()))


def list_experiments(settings: Settings) -> list[Experiment]:
    folder = experiments_dir(settings)
    return (
        [Experiment.from_dict(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
        if folder.exists()
        else []
    )


def parse_variant(spec: str) -> Variant:
    """``name=version:weight[:realtime]``; ``version`` may be ``live`` (production)."""
    try:
        name, rest = spec.split("=", 1)
        parts = rest.split(":")
        version, weight = parts[0], float(parts[1])
        mode = parts[2] if len(parts) > 2 else "default"
    except (ValueError, IndexError) as exc:
        raise InvalidRequest(f"variant {spec!r} is not name=version:weight[:realtime]") from exc
    return Variant(name, weight, None if version in ("live", "production") else version, mode)


def start(settings: Settings, name: str, variants: list[Variant]) -> Experiment:
    config = read_config(settings)
    if config.experiment is not None and config.experiment.status == "running":
        raise InvalidRequest(f"experiment {config.experiment.name!r} is running; stop it first")
    if (experiments_dir(settings) / f"{name}.json").exists():
        raise InvalidRequest(f"experiment {name!r} existed before; choose a new name")
    exp = Experiment(name, tuple(variants))
    exp = replace(exp, ramp=({"at": exp.started_at, "weights": exp.weights},))
    write_config(settings, replace(config, experiment=exp))
    return exp


def running(settings: Settings, name: str) -> tuple[ServingConfig, Experiment]:
    config = read_config(settings)
    if config.experiment is None or config.experiment.name != name:
        raise InvalidRequest(f"experiment {name!r} is not running")
    return config, config.experiment


def ramp(settings: Settings, name: str, variant: str, weight: float) -> Experiment:

    config, exp = running(settings, name)
    exp = with_weight(exp, variant, weight)
    write_config(settings, replace(config, experiment=exp))
    return exp


def stop(settings: Settings, name: str) -> Experiment:
    config, exp = running(settings, name)
    exp = replace(
        exp,
        status="stopped",
        ramp=(*exp.ramp, {"at": datetime.now(timezone.utc).isoformat(), "weights": {}}),
    )
    save_experiment(settings, exp)
    write_config(settings, replace(config, experiment=None))
    return exp


def set_shadow(settings: Settings, version: str | None, sample: float) -> ServingConfig:
    config = read_config(settings)
    shadow = Shadow(registry.resolve(settings.artifacts_dir, version), sample) if version else None
    return write_config(settings, replace(config, shadow=shadow))


def load_logs(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every exposure and every event that carries a ``recommendation_id``."""
    records = read_records(settings.exposure_log_dir, "exposures")
    exposures = pd.DataFrame.from_records(records, columns=EXPOSURE_COLUMNS)
    exposures["ts"] = pd.to_datetime(exposures["ts"], utc=True, format="ISO8601")
    exposures = exposures.drop_duplicates("recommendation_id").reset_index(drop=True)
    events = read_events(settings.event_log_dir)
    return exposures, events[events["recommendation_id"].notna()].reset_index(drop=True)


def report(settings: Settings, name: str) -> dict[str, Any]:
    """The experiment's table (per variant) and the events that could not be attributed
    (those answering this experiment's responses, and ids no exposure knows)."""

    exp = load_experiment(settings, name)
    exposures, events = load_logs(settings)
    attributed = attribute(
        exposures, events, timedelta(hours=settings.lifecycle.attribution_window_hours)
    )
    mine = exposures[exposures["experiment"] == name]
    ours = attributed["recommendation_id"].isin(set(mine["recommendation_id"]))
    relevant = attributed[ours | (attributed["unattributed"] == "unknown")]
    control = exp.variants[0].name
    table = variant_table(mine, attributed[ours], control)
    return clean(
        {
            "experiment": exp.to_dict(),
            "control": control,
            "window_hours": settings.lifecycle.attribution_window_hours,
            "exposures": len(mine),
            "events_with_ids": len(relevant),
            "attributed_events": int(relevant["attributed"].sum()),
            "unattributed": unattributed_counts(relevant),
            "table": table.to_dict("records"),
        }
    )
