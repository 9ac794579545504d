"""RECO_RANKER=true: `reco train` fits the two-stage ranker from Feast's offline store and the
nightly publishes its lists, end to end through real Feast, Redis and LightGBM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.batch.listrun import ranking_inputs
from recommender.batch.rankedlists import ranked_chunks
from recommender.batch.scoring import plan_chunks
from recommender.config import Settings
from recommender.contract.published import live_lists, read_precomputed
from recommender.contract.runs import RunManifest
from recommender.data.tables import build_tables, read_table, write_tables
from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_RECENT_ITEMS,
)
from recommender.featurestore.repo import open_store
from recommender.pipeline.nightly import run_nightly
from recommender.ranking.features import Genres
from recommender.ranking.model import SUBDIR, RankingCatalog, UserBlock, ranked_top_n
from recommender.ranking.onlinerows import latest_values
from recommender.ranking.retrievers import History, recent_from_lists
from recommender.training.artifacts import load_bundle, models_dir
from tests.support.repo import feast_apply, make_settings, teardown_repo
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
USERS = ("a_user0", "a_user3", "b_user7", "b_user12")


@pytest.fixture(scope="module")
def ranked_repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    settings = make_settings(
        tmp_path_factory.mktemp("ranked"),
        redis_url,
        ranker=True,
        ranker_require_win=False,  # two tastes that never mix: ALS alone is hard to beat
        ranker_depth=40,  # the cost knobs reach the trained model
        ranker_rounds=120,
    )
    inter, users, items = synthetic_tables(np.random.default_rng(7))
    write_tables(build_tables(inter, users, items), settings.data_dir)
    feast_apply(settings)
    run_nightly(settings, retrain=True)
    yield settings
    teardown_repo(settings)


def _expected(settings: Settings, user_ids: list[str], as_of: str) -> list[list[str]]:
    """The ranked lists recomputed from the saved bundle and the latest snapshot rows."""
    bundle = load_bundle(settings.artifacts_dir)
    assert bundle.ranking is not None
    tables = {
        name: read_table(settings.data_dir, name)
        for name in ("users", "items", USER_ACTIVITY, ITEM_STATS, USER_RECENT_ITEMS)
    }
    item_ids = bundle.items.ids.tolist()
    by_id = tables["items"].set_index("item_id")["genres"]
    genres = Genres.from_lists([list(by_id[i]) for i in item_ids])
    item_values = latest_values(
        tables, "item_id", {ITEM_STATS: ITEM_STATS, ITEM_METADATA: "items"}, item_ids
    )
    user_values = latest_values(
        tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY, USER_PROFILE: "users"}, user_ids
    )
    recent = tables[USER_RECENT_ITEMS].sort_values("event_timestamp").groupby("user_id").tail(1)
    lists = recent.set_index("user_id")["recent_item_ids"]
    rows = bundle.users.rows(user_ids)
    history = History(
        rows,
        bundle.user_items[rows],
        recent_from_lists([list(lists.get(u, [])) for u in user_ids], bundle.items),
    )
    catalog = RankingCatalog(
        bundle.ranking, bundle.als, bundle.popularity.item_scores, genres, item_values
    )
    users = UserBlock(history, user_ids, user_values, pd.Timestamp(as_of))
    ids, _, masks = ranked_top_n(catalog, users, settings.nightly.top_n)
    assert ((masks > 0) == (ids >= 0)).all()  # every listed item says who found it
    return [[item_ids[r] for r in row if r >= 0] for row in ids]


def test_train_saves_the_ranker_in_the_bundle(ranked_repo: Settings) -> None:
    bundle = load_bundle(ranked_repo.artifacts_dir)
    assert bundle.ranking is not None
    saved = models_dir(ranked_repo.artifacts_dir) / bundle.version / SUBDIR
    assert saved.is_dir() and any(saved.iterdir())
    summary = bundle.manifest.metrics["ranker"]
    assert summary["train_rows"] > 0 and summary["train_queries"] > 0
    assert len(summary["cutoffs"]) == 3 and summary["sampled_users"] is None  # 60 users
    manifest = bundle.ranking.ranker.manifest
    # the depth is the model's; the rounds a cap (early stopping may keep fewer)
    assert manifest.depth == 40 and 1 <= manifest.rounds <= 120
    assert bundle.ranking.ranker.booster.num_trees() <= 120


def test_nightly_publishes_the_ranked_lists(ranked_repo: Settings) -> None:
    runs = sorted((ranked_repo.artifacts_dir / "runs").glob("*.json"))
    manifest = RunManifest.model_validate_json(runs[-1].read_text())
    assert manifest.status == "succeeded" and manifest.users_written == 60
    assert manifest.lists == "ranked"
    expected = _expected(ranked_repo, list(USERS), manifest.lists_timestamp)
    store = open_store(ranked_repo)
    live = live_lists(ranked_repo)
    bundle = load_bundle(ranked_repo.artifacts_dir)
    assert bundle.ranking is not None
    for user_id, want in zip(USERS, expected, strict=True):
        stored = read_precomputed(store, user_id, live)
        assert stored is not None and stored["model_version"] == bundle.version
        assert stored["item_ids"] == want
        assert stored["scores"] == sorted(stored["scores"], reverse=True)
        assert stored["source_names"] == list(bundle.ranking.ranker.manifest.retrievers)
        assert len(stored["sources"]) == len(want) and all(0 < m < 32 for m in stored["sources"])
        seen = set(bundle.items.ids[bundle.user_items[bundle.users.rows([user_id])].indices])
        assert not seen & set(want)
        row = bundle.users.rows([user_id])
        _, als_scores = bundle.als.recommend(row, bundle.user_items[row], ranked_repo.nightly.top_n)
        assert not np.allclose(stored["scores"][:5], als_scores[0][:5])  # the ranker's scores
        # the synthetic groups: a user's own group's unseen items lead the ranked list
        assert sum(i.startswith(user_id[0]) for i in want[:5]) >= 4, want
    offline = pd.read_parquet(ranked_repo.data_dir / "user_recommendations" / manifest.run_id)
    assert (
        offline["rec_source_names"] == ",".join(bundle.ranking.ranker.manifest.retrievers)
    ).all()
    assert (offline["rec_sources"].map(len) == offline["rec_item_ids"].map(len)).all()


def test_blocks_ranked_in_helper_processes_equal_one_process(ranked_repo: Settings) -> None:
    """The nightly ranks blocks of users in helper processes (RECO_RANK_WORKERS, one per core
    by default): two helpers on blocks of 7 users give the lists of one pass in this process,
    chunk by chunk, in order."""
    bundle = load_bundle(ranked_repo.artifacts_dir)
    manifest = RunManifest.model_validate_json(
        sorted((ranked_repo.artifacts_dir / "runs").glob("*.json"))[-1].read_text()
    )
    inputs = ranking_inputs(ranked_repo, bundle, manifest.lists_timestamp)
    chunks = plan_chunks(len(bundle.users), 25)  # 60 users: chunks of 25, 25, 10
    here = list(ranked_chunks(bundle, ranked_repo.artifacts_dir, inputs, chunks, 10, 0))
    helpers = list(
        ranked_chunks(bundle, ranked_repo.artifacts_dir, inputs, chunks, 10, 2, block_users=7)
    )
    assert [c for c, *_ in helpers] == chunks
    for (_, ids, scores, masks), (_, ids2, scores2, masks2) in zip(here, helpers, strict=True):
        np.testing.assert_array_equal(ids2, ids)
        np.testing.assert_allclose(scores2, scores, rtol=1e-6)
        np.testing.assert_array_equal(masks2, masks)
    assert sum(len(ids) for _, ids, _, _ in helpers) == 60


def test_the_ranker_is_on_by_default_where_its_replay_wins(tmp_path: Path, redis_url: str) -> None:
    ranker = make_settings(tmp_path, redis_url).training.ranker
    assert ranker.enabled is True and ranker.require_win is True


def test_the_manifest_says_why_the_ranker_shipped(ranked_repo: Settings) -> None:
    manifest = load_bundle(ranked_repo.artifacts_dir).manifest
    assert manifest.ranker_choice is not None and manifest.ranker_choice.kept
    assert manifest.ranker_choice.ranked_known is not None
    assert manifest.served_paths is not None and "known" in manifest.served_paths.paths
