"""Top-N helpers: factor top-N (chunked and batched) equals scoring the whole score matrix
at once; the sparse top-N picks from stored entries only."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.batch.scoring import plan_chunks
from recommender.models.topn import dense_top_n, factor_top_n, sparse_top_n


def _problem(rng: np.random.Generator, users: int = 300, items: int = 200, factors: int = 8):
    user_f = rng.standard_normal((users, factors)).astype(np.float32)
    item_f = rng.standard_normal((items, factors)).astype(np.float32)
    seen = sp.random(users, items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    seen.data[:] = 1.0
    return user_f, item_f, seen


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_batched_equals_the_dense_reference(rng: np.random.Generator, batch_size: int) -> None:
    user_f, item_f, seen = _problem(rng)
    ids, scores = factor_top_n(user_f, item_f, seen, 20, batch_size=batch_size)
    ref_ids, ref_scores = dense_top_n(user_f, item_f, seen, 20)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    for row in range(len(ids)):  # seen items never come back
        assert not set(ids[row]) & set(seen[row].indices)


def test_chunks_concatenated_equal_one_pass(rng: np.random.Generator) -> None:
    user_f, item_f, seen = _problem(rng)
    whole = factor_top_n(user_f, item_f, seen, 15, batch_size=300)
    parts = [
        factor_top_n(user_f[c.start : c.stop], item_f, seen[c.start : c.stop], 15, batch_size=16)
        for c in plan_chunks(len(user_f), 37)
    ]
    np.testing.assert_array_equal(np.vstack([p[0] for p in parts]), whole[0])
    # scores agree to float32 rounding (the blocked product sums in batch-dependent order)
    np.testing.assert_allclose(np.vstack([p[1] for p in parts]), whole[1], rtol=1e-5)


def test_short_lists_are_padded() -> None:
    user_f = np.ones((2, 2), np.float32)
    item_f = np.array([[1, 0], [0, 1], [2, 2]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0]], np.float32))
    ids, scores = factor_top_n(user_f, item_f, seen, 5)
    assert ids[0].tolist() == [2, -1, -1, -1, -1]
    assert ids[1, :3].tolist() == [2, 0, 1] or ids[1, :3].tolist() == [2, 1, 0]
    assert np.isneginf(scores[0, 1:]).all() and (ids[1, 3:] == -1).all()


def test_sparse_top_n_takes_stored_unseen_entries_best_first() -> None:
    scores = sp.csr_matrix(np.array([[0, 3, 1, 2], [5, 0, 5, 0], [0, 0, 0, 0]], np.float32))
    seen = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], np.float32))
    ids, top = sparse_top_n(scores, seen, 3)
    assert ids.tolist() == [[1, 2, -1], [0, 2, -1], [-1, -1, -1]]  # tie: the lower item
    assert top[0, :2].tolist() == [3, 1] and np.isneginf(top[:, 2]).all()
    assert sparse_top_n(sp.csr_matrix((2, 4), dtype=np.float32), seen[:2], 2)[0].tolist() == [
        [-1, -1],
        [-1, -1],
    ]


def test_one_row_at_a_time_equals_the_block(rng: np.random.Generator) -> None:
    """A request's single row takes a plain sort instead of the block layout: each row on
    its own gives what the whole block gives (ties to the lower item, seen items out, short
    rows padded)."""
    scores = sp.random(12, 500, density=0.2, format="csr", random_state=5, dtype=np.float32)
    scores.data = np.round(scores.data, 1)  # many ties
    seen = sp.random(12, 500, density=0.05, format="csr", random_state=6, dtype=np.float32)
    for n in (5, 60, 200):
        ids, top = sparse_top_n(scores, seen, n)
        for u in range(12):
            row_ids, row_top = sparse_top_n(scores[u], seen[u], n)
            np.testing.assert_array_equal(row_ids[0], ids[u])
            np.testing.assert_array_equal(row_top[0], top[u])
    assert (ids == -1).any()  # some rows have fewer than n stored unseen entries
