"""Training rows through the real Feast offline store: no leakage, the leak's effect, and the
same feature vectors from the online store (real Redis) as from the offline store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from recommender.config import Settings
from recommender.data.tables import write_tables
from recommender.evaluation.metrics import ndcg_at_k
from recommender.featurestore.layout import FeastLayout
from recommender.featurestore.names import ITEM_KEY, USER_KEY, feature_column
from recommender.featurestore.repo import materialize, open_store, redis_client
from recommender.ranking.dataset import FeastReader, TableReader, entity_rows
from recommender.ranking.features import (
    FEAST_FEATURES,
    USER_VIEWS,
    feature_matrix,
    feature_specs,
    user_genre_shares,
)
from recommender.ranking.onlinerows import entity_values, online_matrix
from recommender.ranking.ranker import Ranker
from recommender.ranking.twostage import (
    RankingConfig,
    TrainingRows,
    candidate_block,
    fit_ranker,
    fit_retrievers,
    history_for,
    training_rows,
)
from tests.recommender.ranking.support import CUTOFF, LABEL_DAYS, SECOND, hit_tables, vocabularies
from tests.support.repo import feast_apply, make_settings, teardown_repo

pytestmark = pytest.mark.integration

CONFIG = RankingConfig(
    depth=40, als={"factors": 4, "iterations": 5}, rounds=60, lgb_params={"min_data_in_leaf": 5}
)


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[Settings, dict[str, pd.DataFrame]]]:
    settings = make_settings(tmp_path_factory.mktemp("ranking"), redis_url)
    tables = hit_tables(np.random.default_rng(3))
    write_tables(tables, settings.data_dir)
    feast_apply(settings)
    yield settings, tables
    teardown_repo(settings)


def _count_before(
    interactions: pd.DataFrame, key: str, ids: pd.Series, when: pd.Timestamp
) -> np.ndarray:
    counts = interactions[interactions["event_timestamp"] < when].groupby(key).size()
    return counts.reindex(ids).to_numpy(dtype=float)


def test_feast_rows_are_point_in_time_and_match_the_in_memory_join(
    repo: tuple[Settings, dict[str, pd.DataFrame]],
) -> None:
    settings, tables = repo
    inter = tables["interactions"]
    users, items, genres = vocabularies(tables)
    before = inter[inter["event_timestamp"] < CUTOFF]
    fitted = fit_retrievers(before, users, items, CUTOFF, CONFIG)
    active = sorted(before["user_id"].unique())
    history = history_for(fitted, before, active)
    block = candidate_block(fitted, history, active, TableReader(tables), genres, CONFIG)
    entity = entity_rows(block.cands, block.user_ids, items.ids, CUTOFF)
    feast_rows = FeastReader(open_store(settings)).historical(entity)

    # no value stamped after the row's time: counts are exactly those of earlier events
    item_total = feast_rows[feature_column("item_stats", "interactions_total")].to_numpy(
        dtype=float
    )
    expected = _count_before(inter, "item_id", feast_rows["item_id"], CUTOFF)
    np.testing.assert_array_equal(np.nan_to_num(item_total), np.nan_to_num(expected))
    user_total = feast_rows[feature_column("user_activity", "interactions_total")].to_numpy(
        dtype=float
    )
    np.testing.assert_array_equal(
        user_total, _count_before(inter, "user_id", feast_rows["user_id"], CUTOFF)
    )
    # ... while later values exist (the hits' counts grow after the cut-off): the check can fail
    later = _count_before(
        inter, "item_id", feast_rows["item_id"], CUTOFF + pd.Timedelta(days=LABEL_DAYS)
    )
    assert (later > np.nan_to_num(expected)).mean() > 0.1

    x_feast = feature_matrix(
        block.cands, feast_rows, user_genre_shares(history.matrix, genres), genres
    )
    np.testing.assert_array_equal(x_feast, block.x)  # Feast and the in-memory join agree
    assert len(feast_rows) == len(block.cands)
    assert (feast_rows["user_id"].to_numpy() == entity["user_id"].to_numpy()).all()


def _ndcg_on(ranker: Ranker, rows: TrainingRows) -> float:
    """Mean NDCG@10 of the ranker's order over the queries of ``rows``."""
    scores, out, start = ranker.predict(rows.x), [], 0
    for size in rows.groups:
        s, t = scores[start : start + size], rows.y[start : start + size]
        start += size
        if t.any():
            order = np.argsort(-s, kind="stable")
            out.append(ndcg_at_k(order.tolist(), set(np.flatnonzero(t).tolist()), 10))
    return float(np.mean(out))


def test_a_leaky_variant_scores_visibly_better_offline(
    repo: tuple[Settings, dict[str, pd.DataFrame]],
) -> None:
    """Trained on the first cut-off, scored on the second: features as of the label window's
    end (the leak) look far better offline than the honest ones, which cannot know the hits."""
    settings, tables = repo
    users, items, genres = vocabularies(tables)
    reader = FeastReader(open_store(settings))
    common = (LABEL_DAYS, users, items, reader, genres, CONFIG)
    got = {}
    for leak in (0.0, float(LABEL_DAYS)):
        first = training_rows(tables["interactions"], [CUTOFF], *common, leak_days=leak)
        second = training_rows(tables["interactions"], [SECOND], *common, leak_days=leak)
        got[leak] = _ndcg_on(fit_ranker(first, CONFIG, LABEL_DAYS), second)
    honest, leaky = got[0.0], got[float(LABEL_DAYS)]
    assert leaky > honest + 0.3, (honest, leaky)
    assert honest < 0.6  # three hits among ~30 unseen items, in no knowable order


def test_online_rows_give_the_same_vectors_as_offline_rows(
    repo: tuple[Settings, dict[str, pd.DataFrame]],
) -> None:
    settings, tables = repo
    store = open_store(settings)
    client = redis_client(settings)
    now = datetime.now(timezone.utc)
    materialize(store, client, now, datetime(2023, 1, 1, tzinfo=timezone.utc))
    inter = tables["interactions"]
    users, items, genres = vocabularies(tables)
    as_of = pd.Timestamp(now)
    fitted = fit_retrievers(inter, users, items, as_of, CONFIG)
    some = ["u1", "u7", "u42"]
    history = history_for(fitted, inter, some)
    block = candidate_block(fitted, history, some, FeastReader(store), genres, CONFIG, as_of)

    views = sorted({v for v, _ in FEAST_FEATURES})
    user_layout = FeastLayout.from_store(store, USER_KEY, [v for v in views if v in USER_VIEWS])
    item_layout = FeastLayout.from_store(store, ITEM_KEY, [v for v in views if v not in USER_VIEWS])
    try:
        user_views = {
            u: user_layout.decode(client.hmget(user_layout.key(u), user_layout.fields))
            for u in some
        }
        item_views = {
            i: item_layout.decode(client.hmget(item_layout.key(i), item_layout.fields))
            for i in items.ids.tolist()
        }
    finally:
        client.close()
    x_online = online_matrix(
        block.cands,
        entity_values(user_views, some, user=True),
        entity_values(item_views, items.ids, user=False),
        as_of,
        user_genre_shares(history.matrix, genres),
        genres,
    )
    specs = feature_specs(list(block.cands.retrievers))
    feast_cols = [j for j, spec in enumerate(specs) if spec.kind == "feast"]
    assert np.isfinite(x_online[:, feast_cols]).mean() > 0.9  # the online values were read
    np.testing.assert_array_equal(x_online, block.x)
