"""Every model user's recent items from the latest ``user_recent_items`` rows, as Arrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from recommender.batch.rankedlists import recent_for_users
from recommender.data.vocab import Vocab
from recommender.ranking.retrievers import recent_from_lists

USERS = Vocab.from_ids(["u1", "u2", "u3"])
ITEMS = Vocab.from_ids([f"i{k}" for k in range(15)])


def test_known_answer() -> None:
    latest = pa.table(
        {
            "user_id": ["u2", "u9", "u1", "u3"],
            "recent_item_ids": [
                ["i3", "nope", "i3", "i1"],  # newest first; repeats and unknown items skipped
                ["i1"],  # not a model user: dropped
                None,
                [f"i{k}" for k in range(12)],  # 12 distinct: the newest 10 kept
            ],
        }
    )
    m = recent_for_users(latest, USERS, ITEMS).toarray()
    assert m.shape == (3, 15)
    assert not m[0].any()  # u1: no list
    np.testing.assert_allclose(m[1, [3, 1]], [1.0, 0.8])
    assert np.count_nonzero(m[1]) == 2
    np.testing.assert_allclose(m[2, :10], 0.8 ** np.arange(10), rtol=1e-6)
    assert not m[2, 10:].any()


def test_equals_recent_from_lists_in_user_order() -> None:
    rng = np.random.default_rng(3)
    ids = [f"u{k}" for k in range(50)]
    users = Vocab.from_ids(ids)
    lists = [[f"i{j}" for j in rng.integers(0, 20, rng.integers(0, 14))] for _ in ids]
    order = rng.permutation(len(ids))  # the table's rows in another order than the model's
    latest = pa.table(
        {"user_id": [ids[k] for k in order], "recent_item_ids": [lists[k] for k in order]}
    )
    got = recent_for_users(latest, users, ITEMS)
    want = recent_from_lists(lists, ITEMS)
    np.testing.assert_allclose(got.toarray(), want.toarray())
