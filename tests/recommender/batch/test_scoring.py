"""Chunked, batched scoring equals scoring the whole score matrix at once."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.batch.scoring import dense_top_n, plan_chunks, top_n


def _problem(rng: np.random.Generator, users: int = 300, items: int = 200, factors: int = 8):
    user_f = rng.standard_normal((users, factors)).astype(np.float32)
    item_f = rng.standard_normal((items, factors)).astype(np.float32)
    seen = sp.random(users, items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    seen.data[:] = 1.0
    return user_f, item_f, seen


def test_plan_chunks_cover_every_user_once() -> None:
    chunks = plan_chunks(10, 4)
    assert [(c.index, c.start, c.stop) for c in chunks] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert plan_chunks(0, 4) == []
    with pytest.raises(ValueError):
        plan_chunks(10, 0)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_batched_equals_the_dense_reference(rng: np.random.Generator, batch_size: int) -> None:
    user_f, item_f, seen = _problem(rng)
    ids, scores = top_n(user_f, item_f, seen, 20, batch_size=batch_size)
    ref_ids, ref_scores = dense_top_n(user_f, item_f, seen, 20)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    for row in range(len(ids)):  # seen items never come back
        assert not set(ids[row]) & set(seen[row].indices)


def test_chunks_concatenated_equal_one_pass(rng: np.random.Generator) -> None:
    user_f, item_f, seen = _problem(rng)
    whole = top_n(user_f, item_f, seen, 15, batch_size=300)
    parts = [
        top_n(user_f[c.start : c.stop], item_f, seen[c.start : c.stop], 15, batch_size=16)
        for c in plan_chunks(len(user_f), 37)
    ]
    np.testing.assert_array_equal(np.vstack([p[0] for p in parts]), whole[0])
    # scores agree to float32 rounding (the blocked product sums in batch-dependent order)
    np.testing.assert_allclose(np.vstack([p[1] for p in parts]), whole[1], rtol=1e-5)


def test_short_lists_are_padded() -> None:
    user_f = np.ones((2, 2), np.float32)
    item_f = np.array([[1, 0], [0, 1], [2, 2]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0]], np.float32))
    ids, scores = top_n(user_f, item_f, seen, 5)
    assert ids[0].tolist() == [2, -1, -1, -1, -1]
    assert ids[1, :3].tolist() == [2, 0, 1] or ids[1, :3].tolist() == [2, 1, 0]
    assert np.isneginf(scores[0, 1:]).all() and (ids[1, 3:] == -1).all()
