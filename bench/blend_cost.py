"""The request cost of a new user's popularity blend (``popularity_blend`` > 0: every item
scored, ``recommender/serving/paths.py::blended_search``) against the plain fold-in (FAISS
search), per catalog size, alone and beside a CPU hog on the same cores (production's normal
case). CPU time per request of the serving function, in process, on a synthetic bundle.

    python -m bench.blend_cost

Results: ``bench/results/blend_cost.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np
import pandas as pd
from scipy.sparse import random as sparse_random

from bench.repo import ROOT
from recommender.data.vocab import Vocab
from recommender.models import ALSModel, PopularityModel
from recommender.models.coldstart import ProfileModel
from recommender.serving import paths
from recommender.training.artifacts import ModelBundle
from recommender.training.index import ItemIndex
from recommender.training.manifest import ModelManifest

SIZES = (5_000, 50_000)
REQUESTS = 300


def _bundle(n_items: int, seed: int = 0) -> ModelBundle:
    rng = np.random.default_rng(seed)
    users = 2_000
    matrix = sparse_random(users, n_items, density=20 / n_items, format="csr", random_state=seed)
    matrix.data[:] = 1.0
    als = ALSModel(factors=64, iterations=2, random_state=seed).fit(matrix)
    ids = np.array([f"i{j}" for j in range(n_items)])
    profile = ProfileModel.fit(pd.DataFrame({"age": rng.integers(18, 60, users)}), als.user_factors)
    return ModelBundle(
        version="bench",
        als=als,
        popularity=PopularityModel().fit(matrix),
        profile=profile,
        index=ItemIndex.build(als.item_factors, queries=als.user_factors),
        users=Vocab.from_ids(np.array([f"u{j}" for j in range(users)])),
        items=Vocab.from_ids(ids),
        titles=pd.Series(ids, index=ids),
        user_items=matrix,
        manifest=ModelManifest(),
    )


def _cpu_ms(bundle: ModelBundle, blend: float, items: list[list[str]]) -> float:
    bundle.manifest = bundle.manifest.model_copy(update={"popularity_blend": blend})
    for recent in items[:20]:
        paths.realtime(bundle, 10, recent_item_ids=recent)
    t0 = time.process_time()
    for recent in items:
        paths.realtime(bundle, 10, recent_item_ids=recent)
    return (time.process_time() - t0) / len(items) * 1e3


def _spin() -> None:
    while True:
        pass


@contextmanager
def _hog() -> Iterator[None]:
    proc = multiprocessing.Process(target=_spin, daemon=True)
    proc.start()
    try:
        yield
    finally:
        proc.terminate()
        proc.join()


def main() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for n in SIZES:
        bundle = _bundle(n)
        items = [[f"i{j}" for j in rng.integers(0, n, 3)] for _ in range(REQUESTS)]
        for hog in (False, True):
            with _hog() if hog else nullcontext():
                fold_in = _cpu_ms(bundle, 0.0, items)
                blended = _cpu_ms(bundle, 0.75, items)
            rows.append(
                {
                    "items": n,
                    "cpu_hog": hog,
                    "fold_in_ms": round(fold_in, 3),
                    "blended_ms": round(blended, 3),
                    "ratio": round(blended / fold_in, 2),
                }
            )
            print(rows[-1])  # noqa: T201
    out = ROOT / "bench" / "results" / "blend_cost.json"
    out.write_text(json.dumps({"command": "python -m bench.blend_cost", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
