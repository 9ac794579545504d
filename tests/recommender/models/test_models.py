"""Model contract on a checkerboard where the right answer is known."""

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from recommender.data.vocab import Vocab, items_row, user_item_matrix
from recommender.models import (
    MODELS,
    ALSModel,
    BPRModel,
    EASEModel,
    ItemKNNModel,
    PopularityModel,
    Recommender,
    build_model,
)
from recommender.models import ease as ease_module
from recommender.models.base import binary
from recommender.models.topn import top_k_rows, top_n_excluding
from tests.support.matrices import SIZE, checkerboard

PERSONALISED = {
    "als": lambda: ALSModel(factors=8, regularization=0.01, iterations=30, random_state=1),
    "ease": lambda: EASEModel(regularization=1.0),
    "itemknn": lambda: ItemKNNModel(neighbours=20, weighting="cosine"),
    "bpr": lambda: BPRModel(factors=8, learning_rate=0.05, iterations=200, random_state=1),
}
ALL = {**PERSONALISED, "popularity": PopularityModel}


@pytest.mark.parametrize("name", sorted(PERSONALISED))
def test_recommends_the_one_missing_item_of_the_users_block(name: str) -> None:
    x = checkerboard()
    model = PERSONALISED[name]().fit(x)
    ids, scores = model.recommend(np.arange(x.shape[0]), x, 3)
    expected = np.array([(u // SIZE) * SIZE + u % SIZE for u in range(x.shape[0])])
    assert (ids[:, 0] == expected).mean() >= (0.9 if name == "bpr" else 1.0)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # sorted best first


@pytest.mark.parametrize("name", sorted(ALL))
def test_contract_excludes_seen_and_pads(name: str) -> None:
    x = checkerboard()
    model = ALL[name]()
    assert isinstance(model, Recommender)
    model.fit(x)
    ids, scores = model.recommend(np.arange(5), x[:5], x.shape[1])
    for u in range(5):
        seen = set(x[u].indices)
        got = [i for i in ids[u] if i >= 0]
        assert not seen & set(got)
        assert len(got) == x.shape[1] - len(seen)  # everything else, then padding
        assert (ids[u][len(got) :] == -1).all() and np.isinf(scores[u][len(got) :]).all()


@pytest.mark.parametrize("name", sorted(ALL))
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    x = checkerboard()
    model = ALL[name]().fit(x)
    files = model.save(tmp_path)
    assert all((tmp_path / f).exists() for f in files)
    again = type(model).load(tmp_path)
    assert again.params() == model.params()
    a = model.recommend(np.arange(10), x[:10], 5)
    b = again.recommend(np.arange(10), x[:10], 5)
    assert (a[0] == b[0]).all() and np.allclose(a[1], b[1])


def test_build_model_by_name_and_bad_parameters() -> None:
    assert set(MODELS) == {"popularity", "itemknn", "als", "bpr", "ease"}
    assert build_model("ease", {"regularization": 5.0}).params() == {"regularization": 5.0}
    with pytest.raises(ValueError, match="unknown model"):
        build_model("svd")
    with pytest.raises(ValueError, match="bad parameters"):
        build_model("ease", {"lambda": 1.0})
    with pytest.raises(ValueError, match="weighting"):
        build_model("itemknn", {"weighting": "jaccard"})
    with pytest.raises(ValueError, match="weighting"):
        build_model("als", {"weighting": "log"})


def test_ease_refuses_catalogs_it_cannot_invert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ease_module, "MAX_ITEMS", 10)
    with pytest.raises(ValueError, match="exceed"):
        EASEModel().fit(checkerboard())


def test_als_binary_weighting_ignores_rating_size() -> None:
    x = checkerboard()
    heavy = x.copy()
    heavy.data *= 5.0  # every rating 5 instead of 1
    a = ALSModel(factors=4, iterations=5, random_state=3).fit(x)
    b = ALSModel(factors=4, iterations=5, random_state=3).fit(heavy)
    assert np.allclose(a.item_factors, b.item_factors, atol=1e-5)
    c = ALSModel(factors=4, iterations=5, random_state=3, weighting="rating").fit(heavy)
    assert not np.allclose(a.item_factors, c.item_factors, atol=1e-3)


def test_fold_in_places_a_new_user_in_the_right_block() -> None:
    x = checkerboard()
    model = ALSModel(factors=8, regularization=0.01, iterations=30, random_state=1).fit(x)
    row = items_row(np.array([20, 21, 22]), x.shape[1])  # three items of block 2
    vec = model.fold_in(row)[0]
    scores = model.item_factors @ vec
    top = np.argsort(-scores)[:5]
    assert set(top) <= set(range(20, 30))


def test_popularity_orders_by_count() -> None:
    x = csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=np.float32))
    ids, _ = PopularityModel().fit(x).recommend(np.array([1]), x[[1]], 2)
    assert ids[0].tolist() == [0, 2]  # item 1 (most popular) is seen; ties by item row


def test_top_n_excluding_by_hand() -> None:
    ids, scores = top_n_excluding(np.array([[3.0, 2.0, 1.0]]), csr_matrix([[1, 0, 0]]), 2)
    assert ids.tolist() == [[1, 2]] and scores.tolist() == [[2.0, 1.0]]


def test_vocab_and_matrix() -> None:
    import pandas as pd

    users, items = Vocab.from_ids(["u1", "u2"]), Vocab.from_ids(["a", "b"])
    assert users.rows(["u2", "zz"]).tolist() == [1, -1]
    df = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "ghost"],
            "item_id": ["a", "a", "b", "a"],
            "rating": [2.0, 5.0, 1.0, 3.0],
        }
    )
    m = user_item_matrix(df, users, items)
    assert m.toarray().tolist() == [[5.0, 0.0], [0.0, 1.0]]  # duplicates keep the max
    with pytest.raises(ValueError):
        Vocab.from_ids(["a", "a"])


@pytest.mark.parametrize("n_items", [50, 700, 5000])
def test_top_k_rows_equals_a_full_stable_sort(n_items: int) -> None:
    """The threshold pass (large catalogs) and the full sort (small ones, rows of ties, rows
    with too few finite values) give each row's k largest, ties by the lower column."""
    rng = np.random.default_rng(n_items)
    scores = rng.standard_normal((40, n_items)).astype(np.float32)
    scores[1] = np.round(scores[1])  # heavy ties
    scores[2] = 0.0  # all tied
    scores[3, 5:] = -np.inf  # fewer finite values than k
    scores[4, ::3] = -np.inf
    scores[5, : n_items // 2] = scores[5, n_items // 2 :][: n_items // 2]  # duplicated values
    k = min(10, n_items)
    ids, top = top_k_rows(scores, k)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_array_equal(top, np.take_along_axis(scores, want, axis=1))
    got_ids, got_top = top_n_excluding(scores, csr_matrix(scores.shape, dtype=np.float32), k)
    np.testing.assert_array_equal(got_ids, np.where(np.isfinite(got_top), want, -1))


def test_binary_is_one_per_positive_entry_and_shares_nothing_with_its_input() -> None:
    weights = csr_matrix(np.array([[0.0, 3.0, 0.5], [2.0, 0.0, 0.0]], dtype=np.float32))
    ones = binary(weights)
    np.testing.assert_array_equal(ones.toarray(), [[0, 1, 1], [1, 0, 0]])
    ones.indices[:] = 0  # the fast path copies the index arrays
    np.testing.assert_array_equal(weights.indices, [1, 2, 0])
    # stored zeros, negatives and duplicates go through scipy's comparison: the same answer
    odd = csr_matrix(
        (np.array([0.0, -1.0, 2.0, 1.0]), np.array([0, 1, 2, 2]), np.array([0, 2, 4])),
        shape=(2, 3),
    )
    np.testing.assert_array_equal(binary(odd).toarray(), [[0, 0, 0], [0, 0, 1]])


# A user unknown at fit time, given only a few items: the item-item models rank their row
# directly (``recommend`` takes the user's items), ALS solves a vector against its item
# factors (the served fold-in). BPR and popularity have no such path (BPR is an offline
# baseline; popularity ignores the user).
@pytest.mark.parametrize("name", ["als", "ease", "itemknn"])
def test_contract_a_new_users_items_place_them_in_their_block(name: str) -> None:
    x = checkerboard()
    model = PERSONALISED[name]().fit(x)
    row = items_row(np.array([20, 21, 22]), x.shape[1])  # three items of block 2
    if isinstance(model, ALSModel):
        scores = model.item_factors @ model.fold_in(row)[0]
        scores[[20, 21, 22]] = -np.inf  # what the user has is filtered, as the contract says
        top = np.argsort(-scores, kind="stable")[:5]
    else:
        top = model.recommend(np.array([0]), row, 5)[0][0]
    assert set(top.tolist()) <= set(range(20, 30)), top
