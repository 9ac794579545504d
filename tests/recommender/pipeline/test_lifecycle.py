"""Promotion gate both ways, registry statuses, rollback to the previous lists and model
(pointer switch and rescoring), on a repository of its own (it changes the run history)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from jobs.cli import app
from recommender.config import Settings
from recommender.contract.published import live_lists, next_slot
from recommender.contract.runs import RunManifest, write_manifest
from recommender.data.tables import build_tables, write_tables
from recommender.errors import InvalidRequest
from recommender.pipeline.nightly import run_nightly
from recommender.pipeline.release import promote, rollback
from recommender.training import registry
from recommender.training.artifacts import new_version
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("lifecycle"), redis_url)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    yield settings
    teardown_repo(settings)


def _served(settings: Settings, user: str = "a_user0") -> dict:
    with TestClient(create_app(settings)) as client:
        return client.get("/recommendations", params={"user_id": user, "k": 5}).json()


def test_gate_promotion_and_rollback(repo: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo.artifacts_dir
    first = run_nightly(repo, retrain=True)
    v1 = first.model_version
    assert first.promotion["reasons"] == ["no production model yet"]
    assert registry.production(root) == v1

    # A worse candidate (one ALS iteration, heavy regularisation) is refused, with reasons;
    # the run still publishes fresh lists, scored by production.
    worse = repo.replace(als_regularization=500.0, als_iterations=1)
    refused = run_nightly(worse, retrain=True)
    bad = refused.promotion["candidate"]
    assert not refused.promotion["promote"], refused.promotion
    assert "worse than production" in refused.promotion["reasons"][0]
    assert refused.model_version == v1 and registry.production(root) == v1
    assert registry.get(root, bad).status == "candidate"
    assert registry.read_journal(root)[-1]["action"] == "refuse"

    # An equally good candidate passes and goes live together with its lists.
    better = run_nightly(repo, retrain=True)
    v3 = better.model_version
    assert better.promotion["promote"] and v3 not in (v1, bad)
    assert registry.production(root) == v3 and registry.get(root, v1).status == "archived"
    body = _served(repo)
    assert (body["model_version"], body["run_id"]) == (v3, better.run_id)

    # Rollback: v1's last lists (the refused night's run) still sit in the other slot.
    back = rollback(repo, reason="test")
    assert back == {
        "version": v1,
        "previous": v3,
        "run_id": refused.run_id,
        "how": "pointer switch",
        "reason": "test",
    }
    live = live_lists(repo)
    assert live is not None and (live.run_id, live.model_version) == (refused.run_id, v1)
    assert registry.production(root) == v1 and registry.get(root, v3).status == "archived"
    body = _served(repo)
    assert (body["model_version"], body["run_id"], body["source"]) == (
        v1,
        refused.run_id,
        "precomputed",
    )
    with pytest.raises(InvalidRequest, match="already the production"):
        rollback(repo, to=v1)

    # Manual promotion checks the gate: the worse candidate needs --force.
    with pytest.raises(InvalidRequest, match="gate refuses"):
        promote(repo, bad)
    forced = promote(repo, bad, force=True, reason="operator override")
    assert registry.production(root) == bad and not forced["decision"]["promote"]
    # Its lists were scored now (nothing to re-point to), and v1's run is intact: back again.
    again = rollback(repo)
    assert (again["version"], again["how"]) == (v1, "pointer switch")
    # v3's slot was overwritten since; rolling forward to it rescores.
    forward = rollback(repo, to=v3)
    assert forward["how"] == "rescored" and live_lists(repo).model_version == v3  # type: ignore[union-attr]
    assert registry.read_journal(root)[-1]["action"] == "rollback"

    # A rescoring rollback to v1 interrupted before it published, then resumed by the plain
    # nightly (the cron's): it is still journaled as the rollback it was, not as a promotion
    live = live_lists(repo)
    now = datetime.now(timezone.utc).isoformat()
    stopped = RunManifest(
        # a second later than every run so far: the resume looks at the newest run only
        run_id=new_version(datetime.now(timezone.utc) + timedelta(seconds=1)),
        started_at=now,
        lists_timestamp=now,
        slot=next_slot(live),
        top_n=repo.nightly.top_n,
        chunk_users=repo.nightly.chunk_users,
        status="interrupted",
        model_version=v1,
        model_source="pinned",
        action="rollback",
        reason="back to v1",
    )
    write_manifest(repo, stopped)
    resumed = run_nightly(repo)
    assert (resumed.run_id, resumed.resumed, resumed.status) == (stopped.run_id, 1, "succeeded")
    last = registry.read_journal(root)[-1]
    assert (last["action"], last["version"], last["reason"]) == ("rollback", v1, "back to v1")
    _check_cli(repo, monkeypatch)


def _check_cli(repo: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "RECO_REDIS_URL": repo.redis.url,
        "RECO_FEAST_PROJECT": repo.feast_project,
        "RECO_FEATURE_REPO": str(repo.feature_repo),
        "RECO_ARTIFACTS_DIR": str(repo.artifacts_dir),
    }.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "production" in listed.output and "archived" in listed.output
    shown = runner.invoke(app, ["models", "show", "production"])
    assert shown.exit_code == 0 and '"status": "production"' in shown.output
    missing = runner.invoke(app, ["models", "promote", "nope"])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _flip_bytes(path: Path, at: int = 64) -> None:
    """Corrupt a file in place the way the outside probe did: four bytes inverted."""
    data = bytearray(path.read_bytes())
    data[at : at + 4] = bytes(b ^ 0xFF for b in data[at : at + 4])
    path.write_bytes(bytes(data))


@pytest.fixture
def cli_repo(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = make_settings(tmp_path, redis_url)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    for key, value in {
        "RECO_REDIS_URL": settings.redis.url,
        "RECO_FEAST_PROJECT": settings.feast_project,
        "RECO_FEATURE_REPO": str(settings.feature_repo),
        "RECO_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RECO_CACHE_DIR": str(settings.cache_dir),
        "RECO_ALS_FACTORS": str(settings.training.als.factors),
        "RECO_ALS_ITERATIONS": str(settings.training.als.iterations),
        "RECO_ALS_REGULARIZATION": str(settings.training.als.regularization),
        "RECO_TOP_N": str(settings.nightly.top_n),
    }.items():
        monkeypatch.setenv(key, value)
    yield settings
    teardown_repo(settings)


def _reco(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_rollback_after_the_first_promotion_and_never_to_a_corrupt_version(
    cli_repo: Settings,
) -> None:
    """The probe's sequence: train (published), nightly, train --no-publish, promote v2, then a
    plain rollback goes back to v1 (the journal's ``previous``); a version whose files no
    longer match their checksums is refused by rollback and promotion before anything moves."""
    root = cli_repo.artifacts_dir
    v1 = json.loads(_reco("train"))["version"]
    _reco("nightly")
    v2 = json.loads(_reco("train", "--no-publish"))["version"]
    _reco("models", "promote", v2)
    assert registry.production(root) == v2
    back = json.loads(_reco("models", "rollback"))
    assert (back["version"], back["previous"], back["how"]) == (v1, v2, "pointer switch")
    assert registry.production(root) == v1

    _flip_bytes(root / "models" / v2 / "items.faiss")
    live = live_lists(cli_repo)
    out = _reco("models", "rollback", "--to", v2, code=2)
    assert "items.faiss" in out and "checksum" in out
    out = _reco("models", "promote", v2, code=2)
    assert "items.faiss" in out and "checksum" in out
    assert registry.production(root) == v1 and live_lists(cli_repo) == live
