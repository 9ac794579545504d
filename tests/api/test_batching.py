"""Concurrent two-stage requests are ranked in one block, each getting what it gets alone; a
request that fails does not take the others of its block down."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from api.batching import TwoStageBatcher
from recommender.serving.rerank import TwoStageResult, two_stage_many
from tests.support.metrics import count_and_sum
from tests.support.ranked import jobs_of, ranked_bundle


@pytest.fixture(scope="module")
def jobs():  # type: ignore[no-untyped-def]
    return jobs_of(ranked_bundle())


_names = itertools.count()


def _sizes() -> Histogram:
    # a name of its own: in prometheus_client's multiprocess mode values live per name
    name = f"test_block_{next(_names)}"
    return Histogram(name, "", buckets=(1, 2, 4, 8, 16), registry=CollectorRegistry())


def _same(a: TwoStageResult, b: TwoStageResult) -> None:
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-12)
    assert a.provenance == b.provenance and a.moved_by == b.moved_by


def test_requests_waiting_together_are_ranked_as_one_block(jobs) -> None:  # type: ignore[no-untyped-def]
    sizes = _sizes()
    batcher = TwoStageBatcher(sizes, max_batch=4)

    async def main() -> list[TwoStageResult]:
        return await asyncio.gather(*(batcher.rank(job) for job in jobs))

    results = asyncio.run(main())
    for job, got in zip(jobs, results, strict=True):
        _same(got, two_stage_many([job])[0])
    assert list(count_and_sum(sizes)) == [2, 5]  # 5 jobs, at most 4 per block: 4 then 1


def test_a_lone_request_is_ranked_at_once(jobs) -> None:  # type: ignore[no-untyped-def]
    sizes = _sizes()
    batcher = TwoStageBatcher(sizes)

    async def main() -> TwoStageResult:
        return await asyncio.wait_for(batcher.rank(jobs[0]), timeout=30)

    _same(asyncio.run(main()), two_stage_many([jobs[0]])[0])
    assert list(count_and_sum(sizes)) == [1, 1]


def test_a_failing_request_fails_alone(jobs) -> None:  # type: ignore[no-untyped-def]
    bad = replace(jobs[1], rules=None)  # a defect in one request: its rules cannot apply
    batcher = TwoStageBatcher(_sizes())

    async def main() -> list[TwoStageResult | BaseException]:
        asks = [batcher.rank(jobs[0]), batcher.rank(bad), batcher.rank(jobs[2])]
        return await asyncio.gather(*asks, return_exceptions=True)

    first, failed, third = asyncio.run(main())
    assert isinstance(failed, Exception)
    assert isinstance(first, TwoStageResult) and isinstance(third, TwoStageResult)
    _same(first, two_stage_many([jobs[0]])[0])
    _same(third, two_stage_many([jobs[2]])[0])


def test_a_block_waits_briefly_for_requests_still_on_their_way(jobs) -> None:  # type: ignore[no-untyped-def]
    """Two requests that will rank: the second's store read takes a moment longer. The
    first's block waits for it (one block of two); a request expected but never asking
    (it took another path) holds the block at most ``hold_seconds``."""
    sizes = _sizes()
    batcher = TwoStageBatcher(sizes, hold_seconds=0.5)

    async def request(job, delay: float) -> TwoStageResult:  # type: ignore[no-untyped-def]
        with batcher.expecting(True):
            await asyncio.sleep(delay)  # reading the store
            return await batcher.rank(job)

    async def two() -> list[TwoStageResult]:
        return await asyncio.gather(request(jobs[0], 0), request(jobs[1], 0.01))

    first, second = asyncio.run(two())
    _same(first, two_stage_many([jobs[0]])[0])
    _same(second, two_stage_many([jobs[1]])[0])
    assert list(count_and_sum(sizes)) == [1, 2]

    async def one_never_asks() -> float:
        loop = asyncio.get_running_loop()
        with batcher.expecting(True):  # e.g. the store was down: no ranking
            t0 = loop.time()
            await request(jobs[0], 0)
            return loop.time() - t0

    assert 0.5 <= asyncio.run(one_never_asks()) < 5
    assert list(count_and_sum(sizes)) == [2, 3]
