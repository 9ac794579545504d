"""`reco evaluate` end to end on the repository's own tables: report files, tuning handed to
training, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.errors import InvalidDataset
from recommender.pipeline.train import als_params
from tests.recommender.ranking.support import hit_tables
from tests.support.synthetic import synthetic_tables

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic tables in a feature repo; the last users of each group arrive late."""
    inter, users, items = synthetic_tables(np.random.default_rng(5), per_user=14)
    late = inter["user_id"].str.extract(r"user(\d+)$")[0].astype(int) >= 26
    inter.loc[late, "timestamp"] += 90 * 86400
    write_tables(build_tables(inter, users, items), tmp_path / "feature_repo" / "data")
    monkeypatch.setenv("RECO_FEATURE_REPO", str(tmp_path / "feature_repo"))
    monkeypatch.setenv("RECO_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return tmp_path


def test_evaluate_writes_the_report_and_the_tuning(repo: Path) -> None:
    out = repo / "report"
    args = ["evaluate", "--dataset", "tables", "--models", "popularity,ease,als"]
    result = runner.invoke(app, [*args, "--k", "5,10", "--tune", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["report"] == str(out) and set(printed["ndcg@10"]) == {
        "popularity",
        "ease",
        "als",
    }

    for name in (
        "metrics.json",
        "summary.md",
        "summary.html",
        "metrics_at_k.png",
        "coverage_vs_ndcg.png",
        "coldstart_vs_n.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "metrics_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"]["protocol"] == "random" and report["ks"] == [5, 10]
    assert (
        report["models"]["ease"]["metrics"]["ndcg@10"]
        > report["models"]["popularity"]["metrics"]["ndcg@10"]
    )
    assert len(report["tuning"]["als"]["trials"]) == 18
    paths = {r["path"] for r in report["replay"]["rows"]}
    assert {"precomputed", "realtime n=1", "realtime profile", "popular n=0"} <= paths
    summary = (out / "summary.md").read_text()
    assert "| ease" in summary and "Served hybrid" in summary and "![coldstart_vs_n.png]" in summary
    # each path against its own fallback, at two cut-offs, with intervals and the route
    evidence = report["replay"]["evidence"]
    assert [e["quantile"] for e in evidence] == [0.8, 0.9]
    assert evidence[0]["cutoff"] < evidence[1]["cutoff"]
    known = evidence[0]["paths"]["known"]
    assert known["diff_low"] <= known["ndcg"] - known["fallback_ndcg"] <= known["diff_high"]
    assert "Per path against its popularity fallback" in summary and "| served by |" in summary

    # training picks the tuned ALS parameters up, unless a RECO_ALS_* setting says otherwise
    settings = Settings(feature_repo=repo / "feature_repo", artifacts_dir=repo / "artifacts")
    assert settings.als_tuning_file.exists()
    params, source = als_params(settings)
    assert source["kind"] == "tuned" and source["metric"] == "ndcg@10"
    assert params["factors"] == report["tuning"]["als"]["best_params"]["factors"]
    explicit = Settings(
        feature_repo=repo / "feature_repo", artifacts_dir=repo / "artifacts", als_factors=7
    )
    params, source = als_params(explicit)
    assert params["factors"] == 7 and source["overridden_by_settings"] == ["factors"]


def test_other_protocols_and_a_rating_threshold(repo: Path) -> None:
    for protocol in ("leave-last-n", "user-temporal"):
        out = repo / protocol
        result = runner.invoke(
            app,
            [
                "evaluate",
                "--dataset",
                "tables",
                "--protocol",
                protocol,
                "--models",
                "popularity,ease",
                "--min-rating",
                "4",
                "--no-replay",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        report = json.loads((out / "metrics.json").read_text())
        assert report["split"]["protocol"] == protocol and report["replay"] is None
        assert report["split"]["refit_on_train_and_valid"] is True
        assert report["reference"] is None  # published numbers only for the same protocol


def test_a_split_without_test_users_is_a_clear_error(repo: Path) -> None:
    # the last 10% of time holds only the late users, whom no model can know: nothing to test
    args = ["evaluate", "--dataset", "tables", "--protocol", "temporal", "--no-replay"]
    result = runner.invoke(app, [*args, "--out", str(repo / "t")])
    assert result.exit_code == 2
    assert "protocol temporal leaves no test interactions" in result.output
    assert not (repo / "t").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "ease,svd"], "unknown model"),
        (["--protocol", "kfold"], "unknown protocol"),
        (["--dataset", "ml-20m"], "unknown dataset"),
        (["--k", "ten"], "comma-separated integers"),
        (["--k", "0"], "between 1 and 1000"),
        (["--min-rating", "9"], "no interactions left"),
    ],
)
def test_bad_input_exits_2_with_a_message(repo: Path, args: list[str], message: str) -> None:
    base = ["evaluate", "--dataset", "tables", "--models", "popularity", "--no-replay"]
    result = runner.invoke(app, [*base, *args, "--out", str(repo / "bad")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (repo / "bad" / "metrics.json").exists()


def test_a_corrupt_tuning_file_is_a_clear_error(repo: Path) -> None:
    settings = Settings(feature_repo=repo / "feature_repo", artifacts_dir=repo / "artifacts")
    settings.als_tuning_file.parent.mkdir(parents=True)
    settings.als_tuning_file.write_text("{not json")
    with pytest.raises(InvalidDataset, match="is not a tuning result"):
        als_params(settings)


def test_evaluate_the_ranked_model_with_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two-stage on the temporal protocol: each retriever alone, the union's recall, the
    ranker, and a paired interval against every other model, in the report."""
    write_tables(hit_tables(np.random.default_rng(2)), tmp_path / "feature_repo" / "data")
    monkeypatch.setenv("RECO_FEATURE_REPO", str(tmp_path / "feature_repo"))
    out = tmp_path / "ranked"
    args = ["evaluate", "--dataset", "tables", "--protocol", "temporal", "--no-replay"]
    result = runner.invoke(app, [*args, "--models", "popularity,ease,ranked", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    assert {"ranked", "retriever:als", "retriever:ease", "retriever:recent"} <= set(
        report["models"]
    )
    two = report["two_stage"]
    assert 0 < two["union"]["recall"] <= 1
    compared = {i["b"] for i in two["intervals"]}
    assert {"popularity", "ease", "retriever:als"} <= compared
    assert all(i["low"] <= i["diff"] <= i["high"] for i in two["intervals"])
    assert "per_user_ndcg@10" not in report["models"]["ranked"]
    assert "Two-stage" in (out / "summary.md").read_text()
