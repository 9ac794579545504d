"""Candidate sets: the union of the retrievers' top items, with every retriever's score and
the rank of those it proposed, equal to a dense brute-force construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from recommender.models import ALSModel
from recommender.models.topn import top_n_excluding
from recommender.ranking import retrievers
from recommender.ranking.candidates import candidates
from recommender.ranking.retrievers import (
    ALSRetriever,
    DenseRetrieved,
    History,
    ItemScoreRetriever,
    SimilarityRetriever,
    small_product,
)
from recommender.training.index import ItemIndex


class DenseRetriever:
    def __init__(self, name: str, scores: np.ndarray) -> None:
        self.name, self.block = name, scores

    def retrieve(self, history: History, depth: int) -> DenseRetrieved:
        return DenseRetrieved.of(self.block[history.user_rows], history.matrix, depth)


def _brute_force(dense: list[np.ndarray], seen: csr_matrix, depth: int) -> tuple:
    n_users, n_items = seen.shape
    proposed = np.zeros((n_users, n_items), dtype=bool)
    rank_maps = []
    for block in dense:
        ids, _ = top_n_excluding(block, seen, depth)
        rank = np.full((n_users, n_items), np.nan, dtype=np.float32)
        for u in range(n_users):
            for r, i in enumerate(ids[u]):
                if i >= 0:
                    proposed[u, i] = True
                    rank[u, i] = r + 1
        rank_maps.append(rank)
    u, i = np.nonzero(proposed)
    scores = np.stack([b[u, i] for b in dense], axis=1).astype(np.float32)
    scores[~np.isfinite(scores)] = np.nan
    return u, i, scores, np.stack([r[u, i] for r in rank_maps], axis=1)


def test_candidates_equal_the_dense_construction() -> None:
    rng = np.random.default_rng(11)
    n_users, n_items, depth = 37, 60, 8
    seen = csr_matrix(sparse_random(n_users, n_items, density=0.2, random_state=3, format="csr"))
    a = rng.standard_normal((n_users, n_items)).astype(np.float32)
    b = np.round(rng.standard_normal((n_users, n_items)), 1).astype(np.float32)  # ties
    b[:, ::7] = -np.inf  # nothing to say about some items
    b[5] = -np.inf  # nor anything about one user
    popular = np.round(rng.random(n_items), 1).astype(np.float32)  # ties: the lower item first
    trending = np.where(rng.random(n_items) < 0.5, popular, -np.inf).astype(np.float32)
    retrievers = [
        DenseRetriever("a", a),
        DenseRetriever("b", b),
        ItemScoreRetriever("popular", popular),
        ItemScoreRetriever("trending", trending),  # nothing to say about half the items
    ]
    history = History(np.arange(n_users), seen, seen)
    got = candidates(retrievers, history, depth, block_users=10)  # several blocks
    dense = [a, b, *(np.broadcast_to(x, (n_users, n_items)) for x in (popular, trending))]
    u, i, scores, ranks = _brute_force(dense, seen, depth)
    np.testing.assert_array_equal(got.user_pos, u)
    np.testing.assert_array_equal(got.item_rows, i)
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.ranks, ranks)
    assert got.retrievers == ("a", "b", "popular", "trending")
    assert not seen[got.user_pos, got.item_rows].any()  # nothing seen is proposed


@pytest.mark.parametrize("small", [True, False], ids=["numpy_product", "scipy_product"])
def test_sparse_and_factor_retrievers_equal_their_dense_blocks(
    small: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """item-kNN and "recent" propose the best *reached* items of the dense product (an item
    no neighbour list reaches is not proposed, and scores 0); ALS proposes the best items of
    the dense inner products; every pair's score is the dense block's value. Both ways of
    multiplying (numpy on the CSR arrays for a request's few items, scipy for a block)."""
    if not small:
        monkeypatch.setattr(retrievers, "SMALL_PRODUCT", 0)
    rng = np.random.default_rng(5)
    n_users, n_items, depth = 40, 90, 12
    seen = csr_matrix(sparse_random(n_users, n_items, density=0.05, random_state=4, format="csr"))
    seen.data[:] = 1.0
    recent = seen.copy()
    recent.data = np.round(rng.random(recent.nnz), 1).astype(np.float32)
    similarity = csr_matrix(
        sparse_random(n_items, n_items, density=0.04, random_state=6, format="csr"),
        dtype=np.float32,
    )
    similarity.data = np.round(similarity.data, 1)  # ties: the lower item first
    als = ALSModel(factors=6, iterations=2, random_state=1).fit(seen)
    history = History(np.arange(n_users), seen, recent)
    for retriever, dense in [
        (SimilarityRetriever("knn", similarity), (seen @ similarity).toarray()),
        (
            SimilarityRetriever("recent", similarity, use_recent=True),
            (recent @ similarity).toarray(),
        ),
    ]:
        got = retriever.retrieve(history, depth)
        reached = np.where(dense != 0, dense, -np.inf).astype(np.float32)
        np.testing.assert_array_equal(got.ids, top_n_excluding(reached, seen, depth)[0])
        u, i = np.nonzero(np.ones((n_users, n_items), bool))
        np.testing.assert_allclose(got.at(u, i), dense[u, i], rtol=1e-6)
    assert (got.ids >= 0).any() and (got.ids == -1).any()  # some users reach < depth items
    als_got = ALSRetriever(als).retrieve(history, depth)
    dense = als.user_factors @ als.item_factors.T
    np.testing.assert_array_equal(als_got.ids, top_n_excluding(dense, seen, depth)[0])
    u, i = np.nonzero(np.ones((n_users, n_items), bool))
    np.testing.assert_allclose(als_got.at(u, i), dense[u, i], rtol=1e-5, atol=1e-6)
    # through the FAISS index (what a request uses; exact at this size): the same lists
    indexed = ALSRetriever(als, index=ItemIndex.build(als.item_factors)).retrieve(history, depth)
    np.testing.assert_array_equal(indexed.ids, als_got.ids)
    np.testing.assert_allclose(indexed.at(u, i), dense[u, i], rtol=1e-5, atol=1e-6)


def test_small_product_equals_scipys_product() -> None:
    """A request's history times the similarities, from the CSR arrays: the same stored
    entries and the same float32 sums as scipy's product (binary and weighted sources; an
    empty history; a sum that cancels to 0 is not stored, as scipy drops it)."""
    similarity = csr_matrix(
        sparse_random(300, 300, density=0.1, random_state=8, format="csr"), dtype=np.float32
    )
    similarity.data -= 0.5  # some negative similarities
    for seed in range(5):
        rng = np.random.default_rng(seed)
        cols = np.sort(rng.choice(300, size=int(rng.integers(1, 12)), replace=False))
        weights = (0.8 ** np.arange(len(cols))).astype(np.float32)
        source = csr_matrix((weights, cols, [0, len(cols)]), shape=(1, 300))
        for ones in (True, False):
            src = csr_matrix((np.ones_like(weights), cols, [0, len(cols)]), shape=(1, 300))
            expected = (src if ones else source) @ similarity
            expected.sum_duplicates()
            got = small_product(source, similarity, ones)
            assert got is not None
            keys, values = got
            np.testing.assert_array_equal(keys, expected.indices.astype(np.int64))
            np.testing.assert_array_equal(values, expected.data)
    cancel = csr_matrix(np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32))
    got = small_product(csr_matrix(np.array([[1.0, 1.0]], np.float32)), cancel, False)
    assert got is not None and not len(got[0])  # 1 - 1: nothing stored
    empty = small_product(csr_matrix((1, 300), dtype=np.float32), similarity, True)
    assert empty is not None and not len(empty[0])
