"""The Ray engine (a real local Ray instance) gives the same lists as the local engine."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommender.batch.engines import LocalEngine, RayEngine
from recommender.batch.scoring import plan_chunks
from recommender.config import Settings
from recommender.pipeline.nightly import run_nightly
from tests.support.repo import teardown_repo

ray = pytest.importorskip("ray", reason="the test extra installs ray")


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[RayEngine]:
    engine = RayEngine(num_cpus=2)
    yield engine
    engine.close()


def test_ray_chunks_equal_local_chunks(ray_engine: RayEngine) -> None:
    rng = np.random.default_rng(5)
    user_f = rng.standard_normal((500, 6)).astype(np.float32)
    item_f = rng.standard_normal((90, 6)).astype(np.float32)
    seen = sp.random(500, 90, density=0.1, format="csr", random_state=2, dtype=np.float32)
    chunks = plan_chunks(500, 37)
    local = {
        c.index: (i, s) for c, i, s in LocalEngine().score(user_f, item_f, seen, chunks, 10, 8)
    }
    remote = {c.index: (i, s) for c, i, s in ray_engine.score(user_f, item_f, seen, chunks, 10, 8)}
    assert sorted(remote) == sorted(local) == list(range(len(chunks)))
    for index, (ids, scores) in local.items():
        np.testing.assert_array_equal(remote[index][0], ids)
        np.testing.assert_allclose(remote[index][1], scores, rtol=1e-6)


@pytest.fixture(scope="module")
def own_repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    """Its own repository: the shared one's run history stays as other tests expect it."""
    from recommender.data.tables import build_tables, write_tables
    from tests.support.repo import feast_apply, make_settings
    from tests.support.synthetic import synthetic_tables

    settings = make_settings(tmp_path_factory.mktemp("engines"), redis_url, chunk_users=7)
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    yield settings
    teardown_repo(settings)


@pytest.mark.integration
def test_nightly_on_ray_publishes_the_same_lists(own_repo: Settings, ray_engine: RayEngine) -> None:
    settings = own_repo
    local = run_nightly(settings, retrain=True, engine="local", resume=False)
    on_ray = run_nightly(settings, engine="ray", resume=False)
    assert on_ray.engine == "ray" and on_ray.chunks_total == 9

    def lists(run_id: str) -> pd.DataFrame:
        table = pd.read_parquet(settings.data_dir / "user_recommendations" / run_id)
        return table.set_index("user_id").sort_index()

    a, b = lists(local.run_id), lists(on_ray.run_id)
    assert len(a) == 60
    assert a["rec_item_ids"].map(list).tolist() == b["rec_item_ids"].map(list).tolist()
