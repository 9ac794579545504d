"""The ranked bundle replayed path by path on two taste groups: known users get the ranked
nightly's lists, new users the API's two-stage path with the one-stage fold-in beside it, each
against popularity on the same users, through the serving functions themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.tables import build_tables
from recommender.evaluation import rankedreplay
from recommender.evaluation.pathevidence import Served, served_paths
from recommender.evaluation.rankedreplay import replay_ranked
from recommender.ranking.twostage import RankingConfig
from recommender.serving import paths
from tests.support.synthetic import synthetic_tables

ALS = {"factors": 2, "regularization": 0.1, "alpha": 2.0, "iterations": 15}
CUTOFF = pd.Timestamp("2024-02-20", tz="UTC")
CONFIG = RankingConfig(depth=20, als=ALS, rounds=30, lgb_params={"min_data_in_leaf": 5})


def _tables() -> dict[str, pd.DataFrame]:
    tables = build_tables(
        *synthetic_tables(np.random.default_rng(5), users_per_group=30, per_user=14)
    )
    inter = tables["interactions"].copy()
    # the last five users of each group arrive after the cut-off: new to the model
    late = inter["user_id"].str.extract(r"user(\d+)$")[0].astype(int) >= 25
    inter.loc[late, "event_timestamp"] += pd.Timedelta(days=100)
    return {**tables, "interactions": inter}


def _replay(tables: dict[str, pd.DataFrame]) -> tuple[object, pd.DataFrame, list[Served]]:
    return replay_ranked(
        tables["interactions"],
        tables["users"],
        tables["items"],
        CUTOFF.to_pydatetime(),
        ALS,
        CONFIG,
        label_days=10,
        n_cutoffs=2,
        k=5,
        ns=(1, 3),
        top_n=20,
    )


@pytest.fixture(scope="module")
def replayed() -> tuple[dict[str, pd.DataFrame], object, pd.DataFrame, list[Served]]:
    tables = _tables()
    return (tables, *_replay(tables))


def test_every_path_and_its_fallback_is_replayed(replayed) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _, served = replayed
    assert bundle.ranking is not None  # the ranker was trained before the cut-off
    names = {s.path for s in served}
    assert {"precomputed", "popular known", "realtime profile", "popular n=0"} <= names
    for n in (1, 3):
        assert {f"realtime n={n}", f"onestage n={n}", f"popular n={n}"} <= names
    evidence = served_paths(served, CUTOFF.isoformat(), k=5, min_users=5)
    assert set(evidence.paths) == {"known", "new:1", "new:3", "profile"}
    assert all(p.one_stage_ndcg is not None for k, p in evidence.paths.items() if "new" in k)
    # two tastes that never mix: every personal path finds the user's own group
    for s in served:
        if s.path in ("precomputed", "realtime n=3", "onestage n=3"):
            group = s.user_id[0]
            assert all(i.startswith(group) for i in s.items), (s.path, s.user_id, s.items)


def test_the_new_users_lists_are_the_apis_two_stage_and_one_stage_answers(replayed) -> None:  # type: ignore[no-untyped-def]
    tables, bundle, after, served = replayed
    genres = rankedreplay.item_genres(tables["items"], bundle.items.ids)
    ranking = rankedreplay.ranking_inputs(bundle, tables, genres, CUTOFF.to_pydatetime())
    user = next(s for s in served if s.path == "realtime n=1")
    first = (
        after[after["user_id"] == user.user_id]
        .sort_values(["event_timestamp", "item_id"], kind="stable")["item_id"]
        .iloc[0]
    )
    profile = tables["users"].set_index("user_id").loc[user.user_id].to_dict()
    two = paths.realtime(
        bundle, 5, recent_item_ids=[first], profile=profile, ranking=ranking(user.user_id, profile)
    )
    one = paths.realtime(bundle, 5, recent_item_ids=[first], profile=profile)
    assert two.strategy == "two_stage" and one.strategy == "fold_in"
    assert user.items == two.item_ids
    alt = next(s for s in served if s.path == "onestage n=1" and s.user_id == user.user_id)
    assert alt.items == one.item_ids


def test_a_change_in_the_nightlys_ranking_changes_the_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Known users' lists come from the ranked nightly's own function: reversing its order
    reverses what the replay scores."""
    tables = _tables()
    _, _, before = _replay(tables)
    base = {s.user_id: s.items for s in before if s.path == "precomputed"}
    real = rankedreplay.ranked_top_n

    def reversed_top_n(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows, scores, sources = real(*args, **kwargs)
        return rows[:, ::-1], -scores[:, ::-1], sources[:, ::-1]

    monkeypatch.setattr(rankedreplay, "ranked_top_n", reversed_top_n)
    _, _, after = _replay(tables)
    changed = {s.user_id: s.items for s in after if s.path == "precomputed"}
    assert changed.keys() == base.keys() and changed != base
