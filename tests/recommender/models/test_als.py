"""ALS fold-in on the request path never starts a thread team (issue 16: the cold path
collapsed when another process wanted a core, because each one-user solve ran implicit's
OpenMP team of ``num_threads=0``, i.e. every core)."""

from __future__ import annotations

from typing import Any

import pytest
from implicit.cpu import _als

from recommender.models import ALSModel
from tests.support.matrices import checkerboard


def test_fold_in_solves_on_one_thread_whatever_the_model_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ALSModel(factors=4, iterations=3, num_threads=0).fit(checkerboard())
    seen: list[int] = []
    solve = _als._least_squares

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["num_threads"])
        return solve(*args, **kwargs)

    monkeypatch.setattr(_als, "_least_squares", spy)
    vectors = model.fold_in(checkerboard()[:2])
    assert vectors.shape == (2, 4)
    assert seen and set(seen) == {1}
    assert model.model.num_threads == 0  # training and batch scoring keep every core
