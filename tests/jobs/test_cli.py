"""The `reco` CLI: own-data ingest, clear errors, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from jobs.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "feature_repo"
    monkeypatch.setenv("RECO_FEATURE_REPO", str(repo))
    monkeypatch.setenv("RECO_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return repo / "data"


def write_csv(path: Path, **cols: list) -> Path:
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def test_ingest_own_files(env: Path, tmp_path: Path) -> None:
    inter = write_csv(
        tmp_path / "i.csv",
        user_id=["u1", "u2"],
        item_id=["x", "y"],
        timestamp=["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        rating=[5, 3],
    )
    items = write_csv(
        tmp_path / "items.csv",
        item_id=["x", "y"],
        title=["X", "Y"],
        genres=["Drama|Comedy", "Action"],
    )
    result = runner.invoke(
        app, ["data", "ingest", "--interactions", str(inter), "--items", str(items)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(env / "items.parquet")["genres"].map(list).tolist() == [
        ["Drama", "Comedy"],
        ["Action"],
    ]
    assert len(pd.read_parquet(env / "interactions.parquet")) == 2


def test_bad_column_names_it_exits_2_and_writes_nothing(env: Path, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", user_id=["u1"], item_id=["x"], timestamp=[0])
    assert runner.invoke(app, ["data", "ingest", "--interactions", str(good)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in env.glob("*.parquet")}

    bad = write_csv(
        tmp_path / "bad.csv", user_id=["u9"], item_id=["x"], timestamp=[0], rating=["lots"]
    )
    result = runner.invoke(app, ["data", "ingest", "--interactions", str(bad)])
    assert result.exit_code == 2
    assert "column 'rating' must be numeric" in result.output
    assert {p.name: p.read_bytes() for p in env.glob("*.parquet")} == before
    assert not list(env.glob(".*tmp*"))

    missing = write_csv(tmp_path / "m.csv", user=["u1"], item_id=["x"], timestamp=[0])
    result = runner.invoke(app, ["data", "ingest", "--interactions", str(missing)])
    assert result.exit_code == 2 and "missing required column(s) 'user_id'" in result.output


def test_train_without_data_is_a_clear_error(env: Path) -> None:
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2
    assert "run `reco data fetch`" in result.output


def test_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_FEAST_PROJECT", "not valid!")
    result = runner.invoke(app, ["feast-env"])
    assert result.exit_code == 2 and "RECO_FEAST_PROJECT" in result.output


def test_feast_env_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_REDIS_URL", "redis://cache:6380/1")
    result = runner.invoke(app, ["feast-env"])
    assert "export RECO_FEAST_REDIS=cache:6380,db=1" in result.output


def test_ids_the_api_cannot_take_exit_2_and_write_nothing(env: Path, tmp_path: Path) -> None:
    """Issue 28.3: a 300-character user and item were ingested, trained and recommended, and
    then refused by the API (422); the id rule is now checked at the door of the data too."""
    good = write_csv(tmp_path / "good.csv", user_id=["u1"], item_id=["x"], timestamp=[0])
    assert runner.invoke(app, ["data", "ingest", "--interactions", str(good)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in env.glob("*.parquet")}

    long_user, long_item = "u" * 300, "i" * 300
    bad = write_csv(
        tmp_path / "bad.csv",
        user_id=["u1", long_user, long_user],
        item_id=["x", long_item, "x"],
        timestamp=[0, 1, 2],
    )
    result = runner.invoke(app, ["data", "ingest", "--interactions", str(bad)])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: interactions: column 'user_id' has 1 id(s) longer than 128")
    assert "in 2 row(s)" in line and "(300 characters)" in line
    assert {p.name: p.read_bytes() for p in env.glob("*.parquet")} == before
    assert not list(env.glob(".*tmp*"))
