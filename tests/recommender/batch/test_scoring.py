"""Users cut into chunks for scoring: every user once, in order."""

from __future__ import annotations

import pytest

from recommender.batch.scoring import plan_chunks


def test_plan_chunks_cover_every_user_once() -> None:
    chunks = plan_chunks(10, 4)
    assert [(c.index, c.start, c.stop) for c in chunks] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert plan_chunks(0, 4) == []
    with pytest.raises(ValueError):
        plan_chunks(10, 0)
