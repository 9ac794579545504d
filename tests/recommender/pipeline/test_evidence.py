"""What `reco train` decides on the future: the ranker ships only where its replay wins the
known users' path (unless told otherwise), and the evidence is the replay of what ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.config import Settings
from recommender.data.tables import build_tables
from recommender.evaluation import rankedreplay
from recommender.pipeline.evidence import ReplayTables, judged_sample, path_evidence
from tests.support.synthetic import synthetic_tables

ALS = {"factors": 2, "iterations": 15, "regularization": 0.1, "alpha": 2.0, "random_state": 0}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, ReplayTables]:
    tables = build_tables(*synthetic_tables(np.random.default_rng(7)))
    replay = ReplayTables(
        tables["users"].set_index("user_id"),
        tables["items"].set_index("item_id")["title"],
        tables["users"],
        tables["items"],
    )
    return tables["interactions"], replay


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(feature_repo=tmp_path, ranker_depth=20, ranker_rounds=40, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def upside_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranked nightly's lists come out upside down (worst candidates first): a ranker
    that provably loses the known users' path to ALS's lists."""
    real = rankedreplay.ranked_top_n

    def reversed_top_n(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows, scores, sources = real(*args, **kwargs)
        order = np.argsort(np.where(rows >= 0, scores, np.inf), axis=1, kind="stable")
        take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
        return take(rows), take(scores), take(sources)

    monkeypatch.setattr(rankedreplay, "ranked_top_n", reversed_top_n)


@pytest.mark.usefixtures("upside_down")
def test_a_ranker_that_loses_the_known_users_path_is_dropped_and_says_why(
    tmp_path: Path, data: tuple[pd.DataFrame, ReplayTables]
) -> None:
    interactions, tables = data
    evidence, choice = path_evidence(_settings(tmp_path), interactions, dict(ALS), tables, True)
    assert evidence is not None and choice is not None
    assert not choice.kept and "worse than the one-stage lists" in choice.reason
    assert choice.ranked_known is not None and choice.one_stage_known is not None
    assert choice.ranked_known < choice.one_stage_known
    # the evidence is the one-stage bundle's (what ships): no one-stage alternative recorded
    assert evidence.paths["known"].served_ndcg == choice.one_stage_known
    assert all(p.one_stage_ndcg is None for p in evidence.paths.values())
    # judged after the 90% quantile of the sample, the blend chosen at the 80% one
    _, cuts = judged_sample(_settings(tmp_path), interactions)
    assert evidence.cutoff == cuts.judge.isoformat()


@pytest.mark.usefixtures("upside_down")
def test_with_require_win_off_the_ranker_ships_with_its_own_evidence(
    tmp_path: Path, data: tuple[pd.DataFrame, ReplayTables]
) -> None:
    interactions, tables = data
    settings = _settings(tmp_path, ranker_require_win=False)
    evidence, choice = path_evidence(settings, interactions, dict(ALS), tables, True)
    assert evidence is not None and choice is not None
    assert choice.kept and "RECO_RANKER_REQUIRE_WIN is off" in choice.reason
    assert evidence.paths["known"].served_ndcg == choice.ranked_known


def test_without_the_ranker_nothing_is_chosen(
    tmp_path: Path, data: tuple[pd.DataFrame, ReplayTables]
) -> None:
    interactions, tables = data
    evidence, choice = path_evidence(_settings(tmp_path), interactions, dict(ALS), tables, False)
    assert evidence is not None and choice is None
