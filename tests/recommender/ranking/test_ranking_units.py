"""The retrievers, the candidate set, the feature columns and the LightGBM ranker, on small
data with known answers (no Feast: the in-memory reader; Feast's own rows are compared with it
in test_point_in_time)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from recommender.data.vocab import Vocab
from recommender.errors import CorruptArtifact, InvalidDataset
from recommender.featurestore.names import (
    ITEM_METADATA,
    ITEM_STATS,
    USER_ACTIVITY,
    USER_PROFILE,
    feature_column,
)
from recommender.models import ALSModel
from recommender.ranking import features
from recommender.ranking.candidates import CandidateSet, candidates
from recommender.ranking.dataset import TableReader, labels
from recommender.ranking.features import (
    FEAST_COLUMNS,
    Genres,
    feature_specs,
    fractional_year,
    matrix_from_values,
    numeric_column,
    numeric_values,
    per_user_z,
    user_genre_shares,
)
from recommender.ranking.model import (
    RankingCatalog,
    UserBlock,
    default_cutoffs,
    fit_two_stage,
    history_block,
    rank_users,
    ranked_top_n,
    source_names,
)
from recommender.ranking.onlinerows import latest_values, online_matrix
from recommender.ranking.ranker import Ranker
from recommender.ranking.retrievers import (
    History,
    ItemScoreRetriever,
    recent_from_lists,
    recent_matrix,
)
from recommender.ranking.twostage import (
    RankingConfig,
    candidate_block,
    fit_ranker,
    fit_retrievers,
    history_for,
    rank_block,
    sample_mask,
    training_rows,
)
from tests.recommender.ranking.support import CUTOFF, LABEL_DAYS, SECOND, hit_tables, vocabularies

CONFIG = RankingConfig(
    depth=40, als={"factors": 4, "iterations": 5}, rounds=60, lgb_params={"min_data_in_leaf": 5}
)


def _history(rows: list[list[int]], n_items: int) -> History:
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    u, i = zip(*data, strict=True) if data else ((), ())
    m = csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(len(rows), n_items))
    return History(np.full(len(rows), -1), m, m)


def test_candidates_are_the_union_with_scores_ranks_and_provenance() -> None:
    history = _history([[0], [1]], 5)
    first = ItemScoreRetriever("first", np.array([5, 4, 3, 2, 1], np.float32))
    second = ItemScoreRetriever("second", np.array([1, 2, 3, 4, 5], np.float32))
    cands = candidates([first, second], history, depth=2)
    user0 = cands.item_rows[cands.user_pos == 0].tolist()
    assert user0 == [1, 2, 3, 4]  # first: 1, 2 (0 is seen); second: 4, 3
    pair = int(np.flatnonzero((cands.user_pos == 0) & (cands.item_rows == 1))[0])
    assert cands.provenance(pair) == ["first"]
    np.testing.assert_array_equal(cands.ranks[pair], [1.0, np.nan])
    np.testing.assert_array_equal(cands.scores[pair], [4.0, 2.0])  # scored by both
    assert cands.group_sizes().tolist() == [4, 4]  # user 1: first 0, 2; second 4, 3
    # several pairs at once, best rank first: what one pair at a time gives
    pairs = np.arange(len(cands))
    assert cands.provenances(pairs) == [cands.provenance(int(p)) for p in pairs]
    both = int(np.flatnonzero((cands.user_pos == 1) & (cands.item_rows == 2))[0])
    assert cands.provenances(np.array([both])) == [cands.provenance(both)]
    assert cands.provenances(np.zeros(0, np.int64)) == []
    assert len(candidates([first], _history([], 5))) == 0


def test_recent_matrix_weights_the_newest_item_most() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u", "u", "u"],
            "item_id": ["x", "y", "z"],
            "event_timestamp": pd.to_datetime([1, 2, 3], unit="D", utc=True),
        }
    )
    m = recent_matrix(inter, ["u", "nobody"], Vocab.from_ids(["x", "y", "z"]), last_n=2)
    np.testing.assert_allclose(m.toarray(), [[0.0, 0.8, 1.0], [0.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return hit_tables(np.random.default_rng(3))


def test_the_ranker_learns_the_first_cut_off_and_round_trips(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    users, items, genres = vocabularies(tables)
    rows = training_rows(
        tables["interactions"],
        [CUTOFF, SECOND],
        LABEL_DAYS,
        users,
        items,
        TableReader(tables),
        genres,
        CONFIG,
    )
    assert rows.x.shape == (len(rows.y), len(feature_specs(rows.retrievers)))
    assert rows.groups.sum() == len(rows.y) and rows.y.sum() > 0
    ranker = fit_ranker(rows, CONFIG, LABEL_DAYS)
    files = ranker.save(tmp_path)
    assert sorted(files) == ["ranker.json", "ranker.txt"]
    loaded = Ranker.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(rows.x), ranker.predict(rows.x))
    contrib = loaded.contributions(rows.x[:20])
    np.testing.assert_allclose(contrib.sum(axis=1), ranker.predict(rows.x[:20]), rtol=1e-6)
    assert loaded.manifest.features[0].name == "als_score"
    feast_names = {f.feast for f in loaded.manifest.features if f.kind == "feast"}
    assert "item_stats:interactions_30d" in feast_names
    assert loaded.manifest.train_queries > 0 and loaded.manifest.cutoffs


def test_training_rows_in_blocks_of_users_equal_one_block(
    tables: dict[str, pd.DataFrame],
) -> None:
    """Training rows are built a few users at a time, each block subsampled before the next:
    without subsampling the blocks give exactly the rows of one pass; with it, every query
    keeps its positives and at most ``max_negatives`` negatives."""
    users, items, genres = vocabularies(tables)
    common = (LABEL_DAYS, users, items, TableReader(tables), genres)
    inter = tables["interactions"]
    every = replace(CONFIG, max_negatives=10**6, row_block_users=10**6)
    whole = training_rows(inter, [CUTOFF, SECOND], *common, every)
    blocks = training_rows(inter, [CUTOFF, SECOND], *common, replace(every, row_block_users=7))
    assert len(whole.groups) > 14  # more than two blocks of 7 users
    np.testing.assert_array_equal(blocks.x, whole.x)
    np.testing.assert_array_equal(blocks.y, whole.y)
    np.testing.assert_array_equal(blocks.groups, whole.groups)
    few = training_rows(
        inter, [CUTOFF, SECOND], *common, replace(CONFIG, row_block_users=7, max_negatives=2)
    )
    query = np.repeat(np.arange(len(few.groups)), few.groups)
    negatives = np.bincount(query, weights=few.y == 0, minlength=len(few.groups))
    positives = np.bincount(query, weights=few.y > 0, minlength=len(few.groups))
    assert negatives.max() <= 2 and positives.sum() == whole.y.sum()


def test_rank_block_returns_top_n_with_provenance(tables: dict[str, pd.DataFrame]) -> None:
    users, items, genres = vocabularies(tables)
    reader = TableReader(tables)
    inter = tables["interactions"]
    rows = training_rows(inter, [CUTOFF], LABEL_DAYS, users, items, reader, genres, CONFIG)
    ranker = fit_ranker(rows, CONFIG, LABEL_DAYS)
    before = inter[inter["event_timestamp"] < SECOND]
    fitted = fit_retrievers(before, users, items, SECOND, CONFIG)
    who = ["u0", "u5"]
    history = history_for(fitted, before, who)
    block = candidate_block(fitted, history, who, reader, genres, CONFIG)
    ranked = rank_block(ranker, block, 5)
    assert ranked.item_rows.shape == (2, 5) and (ranked.item_rows >= 0).all()
    for u in range(2):
        assert not set(ranked.item_rows[u]) & set(history.matrix[u].indices)  # nothing seen
        assert np.all(np.diff(ranked.scores[u]) <= 0)
        assert all(p and set(p) <= set(block.cands.retrievers) for p in ranked.provenance[u])


def test_a_ranker_refuses_features_it_was_not_trained_on(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, len(feature_specs(["a"]))))
    y = np.tile([1, 0, 0, 0], 10)
    ranker = Ranker.fit(
        x, y, np.full(10, 4), ["a"], depth=4, rounds=5, params={"min_data_in_leaf": 1}
    )
    with pytest.raises(ValueError, match="feature columns"):
        ranker.predict(x[:, :-1])
    with pytest.raises(ValueError, match="no query has a positive label"):
        Ranker.fit(x, np.zeros(40, int), np.full(10, 4), ["a"], depth=4)
    ranker.save(tmp_path)
    (tmp_path / "ranker.json").write_text("{not json")
    with pytest.raises(CorruptArtifact):
        Ranker.load(tmp_path)


def test_sample_mask_keeps_every_positive_and_at_most_n_negatives() -> None:
    y = np.array([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    groups = np.array([5, 7, 3])  # the last query has no positive
    keep = sample_mask(y, groups, max_negatives=2, seed=1)
    query = np.repeat(np.arange(3), groups)
    assert np.bincount(query[keep], minlength=3).tolist() == [3, 4, 0]
    assert set(np.flatnonzero(keep & (y == 1)).tolist()) == {1, 5, 6}
    assert sample_mask(y, groups, 2, seed=1).tolist() == keep.tolist()  # seeded


class CountingReader(TableReader):
    """A reader that remembers how many entity rows it was asked for."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        super().__init__(tables)
        self.asked: list[int] = []

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        self.asked.append(len(entity_df))
        return super().historical(entity_df)


def test_training_rows_read_features_for_the_kept_rows_only(
    tables: dict[str, pd.DataFrame],
) -> None:
    """Training keeps every positive and a few negatives per query, and asks the feature
    reader for those rows only; their vectors equal the rows of the whole candidate block's
    matrix (the standardised scores are over every candidate of the user, as when serving)."""
    users, items, genres = vocabularies(tables)
    inter = tables["interactions"]
    config = replace(CONFIG, max_negatives=3)
    reader = CountingReader(tables)
    got = training_rows(inter, [CUTOFF], LABEL_DAYS, users, items, reader, genres, config)
    ts = inter["event_timestamp"]
    before = inter[ts < CUTOFF]
    future = inter[(ts >= CUTOFF) & (ts < CUTOFF + pd.Timedelta(days=LABEL_DAYS))]
    active = sorted(set(future["user_id"]) & set(before["user_id"]))
    fitted = fit_retrievers(before, users, items, CUTOFF, config)
    history = history_for(fitted, before, active, config.recent_n)
    block = candidate_block(fitted, history, active, TableReader(tables), genres, config)
    y = labels(block.cands, block.user_ids, items, future)
    keep = sample_mask(y, block.cands.group_sizes(), config.max_negatives, seed=0)
    assert 0 < keep.sum() < len(keep) / 2
    assert reader.asked == [int(keep.sum())]
    np.testing.assert_array_equal(got.x, block.x[keep])
    np.testing.assert_array_equal(got.y, y[keep])
    assert got.groups.sum() == keep.sum() and (got.groups > 0).all()


def test_nightly_rows_from_the_latest_tables_equal_the_point_in_time_rows(
    tables: dict[str, pd.DataFrame],
) -> None:
    """The nightly job feeds the ranker the latest snapshot rows (what materialization puts
    online); after the last snapshot they are exactly what the point-in-time join returns."""
    users, items, genres = vocabularies(tables)
    inter = tables["interactions"]
    end = pd.Timestamp("2024-06-01", tz="UTC")  # after every snapshot
    fitted = fit_retrievers(inter, users, items, end, CONFIG)
    who = ["u3", "u9", "u30"]
    history = history_block(fitted.matrix, users.rows(who))
    block = candidate_block(fitted, history, who, TableReader(tables), genres, CONFIG)
    user_values = latest_values(
        tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY, USER_PROFILE: "users"}, who
    )
    item_values = latest_values(
        tables, "item_id", {ITEM_STATS: ITEM_STATS, ITEM_METADATA: "items"}, items.ids.tolist()
    )
    shares = user_genre_shares(history.matrix, genres)
    x = online_matrix(block.cands, user_values, item_values, end, shares, genres)
    np.testing.assert_array_equal(x, block.x)


def _daily(counts: list[int]) -> pd.DataFrame:
    start = pd.Timestamp("2024-01-01 12:00", tz="UTC")
    days = np.repeat(np.arange(len(counts)), counts)
    return pd.DataFrame({"event_timestamp": start + pd.to_timedelta(days, "D")})


def test_cutoffs_follow_the_last_weeks_or_a_thin_tail_back_to_the_busy_time() -> None:
    day = lambda d: pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d)  # noqa: E731
    # steady activity over 100 days, two-week labels: the last weeks, a label window apart
    steady = _daily([10] * 100)
    assert default_cutoffs(steady, n=3, label_days=14) == [day(57), day(71), day(85)]
    # busy for 50 days, then one event a day for 300 (ML-1M's shape): the last cut-off goes
    # back to where the activity is (the 0.9 quantile: day 47), the others a window apart
    thin = _daily([100] * 50 + [1] * 300)
    assert thin["event_timestamp"].quantile(0.9).floor("D") == day(47)
    assert default_cutoffs(thin, n=3, label_days=7) == [day(33), day(40), day(47)]


def test_ranked_top_n_gives_the_nightly_shape_in_blocks(tables: dict[str, pd.DataFrame]) -> None:
    users, items, genres = vocabularies(tables)
    inter = tables["interactions"]
    fitted = fit_retrievers(inter, users, items, SECOND, CONFIG)
    als = ALSModel(factors=4, iterations=5).fit(fitted.matrix)
    reader = TableReader(tables)
    model = fit_two_stage(inter, items, reader, genres, [CUTOFF], LABEL_DAYS, CONFIG)
    who = ["u1", "u2", "u3", "u4", "u5"]
    recent = recent_from_lists([["i3", "nope", "i7"], [], ["i1"], ["i2"], ["i9", "i8"]], items)
    np.testing.assert_allclose(recent[0].toarray()[0, items.rows(["i3", "i7"])], [1.0, 0.8])
    history = History(users.rows(who), fitted.matrix[users.rows(who)], recent)
    user_values = latest_values(tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY}, who)
    item_values = latest_values(tables, "item_id", {ITEM_STATS: ITEM_STATS}, items.ids.tolist())
    pop = np.asarray((fitted.matrix > 0).sum(axis=0), dtype=np.float32).ravel()
    catalog = RankingCatalog(model, als, pop, genres, item_values)
    users = UserBlock(history, who, user_values, SECOND)
    ids, scores, masks = ranked_top_n(catalog, users, 7, block_users=2)
    whole, _ = rank_users(catalog, users, 7)
    assert ids.dtype == np.int32 and ids.shape == (5, 7) and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, whole.item_rows)
    np.testing.assert_allclose(scores, whole.scores.astype(np.float32))
    names = model.ranker.manifest.retrievers
    assert masks.dtype == np.uint8 and masks.shape == ids.shape and (masks > 0).all()
    by_mask = [[sorted(source_names(int(m), names)) for m in row] for row in masks]
    assert by_mask == [[sorted(p) for p in row] for row in whole.provenance]


@pytest.mark.parametrize("tz", [None, "UTC", "US/Pacific"])
def test_fractional_year_of_one_time_equals_the_column_path(tz: str | None) -> None:
    """A request's single time and Feast's per-row column give the same number (item age)."""
    for text in ("2024-03-01 23:30", "2023-12-31 23:59:59", "2000-02-29 12:00"):
        stamp = pd.Timestamp(text, tz=tz)
        assert fractional_year(stamp)[0] == fractional_year(pd.Series([stamp]))[0]


def test_numeric_values_of_a_list_equal_the_dataframe_conversion() -> None:
    """Decoded online values converted without a DataFrame give numeric_column's numbers."""
    gender = feature_column(USER_PROFILE, "gender")
    count = feature_column(USER_ACTIVITY, "interactions_30d")
    cases = {
        count: [[1, 2.5, None, True, np.int64(3), float("nan")], ["12", "x", None, 4], [None]],
        gender: [["M", "F", "X", None], ["F"], [None]],
    }
    for column, lists in cases.items():
        for values in lists:
            frame = pd.DataFrame({column: values})
            np.testing.assert_array_equal(
                numeric_values(column, values), numeric_column(frame, column)
            )


def test_cutoffs_without_labels_are_a_clear_dataset_error(tables: dict[str, pd.DataFrame]) -> None:
    """History too short for the cut-offs (`reco train` with RECO_RANKER on two weeks of
    data): a domain error that says what is missing, not a bare ValueError."""
    users, items, genres = vocabularies(tables)
    late = pd.Timestamp("2030-01-01", tz="UTC")  # nothing after it to learn from
    common = (LABEL_DAYS, users, items, TableReader(tables), genres, CONFIG)
    with pytest.raises(InvalidDataset, match="no cut-off gave the ranker training rows"):
        training_rows(tables["interactions"], [late], *common)


def test_per_user_z_standardises_each_retrievers_scores_within_each_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per user and retriever: (score - mean) / std over that user's finite scores (NaN
    stays NaN; a constant column is 0), checked against the definition per user."""
    rng = np.random.default_rng(2)
    user_pos = np.repeat(np.arange(6), [5, 1, 7, 3, 9, 2])
    scores = rng.normal(size=(len(user_pos), 4)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = np.nan
    scores[user_pos == 3, 2] = 1.5  # constant
    got = per_user_z(scores, user_pos)
    for u in range(6):
        for j in range(4):
            s = scores[user_pos == u, j].astype(np.float64)
            ok = np.isfinite(s)
            want = np.full(len(s), np.nan)
            if ok.any():
                std = s[ok].std()
                want[ok] = (s[ok] - s[ok].mean()) / (std if std > 0 else 1.0)
            np.testing.assert_allclose(got[user_pos == u, j], want, rtol=1e-9, atol=1e-12)
    assert per_user_z(np.zeros((0, 3), np.float32), np.zeros(0, np.int64)).shape == (0, 3)
    # in passes of one retriever (a training block's size): the same numbers, bit for bit
    monkeypatch.setattr(features, "Z_PASS_ENTRIES", 1)
    np.testing.assert_array_equal(per_user_z(scores, user_pos), got)


def test_genre_shares_from_the_arrays_equal_the_sparse_product() -> None:
    """The CSR-array counting (canonical histories: every request, every nightly block)
    gives what binary(history) @ genres gives; a stored zero or negative weight is not an
    item the user has; a non-canonical history takes scipy's way, with the same answer."""
    rng = np.random.default_rng(4)
    lists = [
        list(rng.choice(["a", "b", "c", "d"], size=rng.integers(0, 3), replace=False))
        for _ in range(40)
    ]
    genres = Genres.from_lists(lists)
    dense = np.where(rng.random((7, 40)) < 0.2, rng.integers(-1, 5, (7, 40)), 0)
    history = csr_matrix(dense.astype(np.float32))
    history.data[::5] = 0.0  # explicitly stored zeros
    ones = (history.toarray() > 0).astype(np.float32)
    expected = (ones @ genres.matrix.toarray()) / np.maximum(ones.sum(axis=1), 1)[:, None]
    assert history.has_canonical_format
    np.testing.assert_allclose(user_genre_shares(history, genres), expected, rtol=1e-6)
    doubled = csr_matrix(
        (np.r_[1.0, 1.0], (np.r_[0, 0], np.r_[3, 3])), shape=(1, 40), dtype=np.float32
    )
    doubled.has_canonical_format = False
    fast = user_genre_shares(csr_matrix(([2.0], ([0], [3])), shape=(1, 40)), genres)
    np.testing.assert_array_equal(user_genre_shares(doubled, genres), fast)


def test_genre_affinity_is_the_users_mean_share_of_the_items_genres() -> None:
    # user 0 has items a1 (drama) and a2 (drama, comedy): shares drama 1.0, comedy 0.5;
    # user 1 has a3 (horror): horror 1.0
    genres = Genres.from_lists([["drama"], ["drama", "comedy"], ["horror"], [], ["comedy"]])
    history = csr_matrix(np.array([[1, 2, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=np.float32))
    shares = user_genre_shares(history, genres)
    np.testing.assert_allclose(shares[0, list(genres.names).index("comedy")], 0.5)
    user_pos = np.array([0, 0, 0, 1, 1])
    item_rows = np.array([1, 3, 4, 0, 2])
    n = 2
    cands = CandidateSet(
        ("a", "b"),
        user_pos,
        item_rows,
        np.zeros((5, n), np.float32),
        np.ones((5, n), np.float32),
    )
    feast = np.zeros((5, len(FEAST_COLUMNS)))
    x = matrix_from_values(cands, feast, 2026.0, shares, genres)
    names = [s.name for s in feature_specs(("a", "b"))]
    got = x[:, names.index("genre_affinity")]
    # (1.0 + 0.5) / 2; no genres: missing; comedy 0.5; user 1 and drama 0; horror 1
    np.testing.assert_allclose(got, [0.75, np.nan, 0.5, 0.0, 1.0])
