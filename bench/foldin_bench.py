"""Per-request ALS fold-in latency: implicit's solve with the model's ``num_threads=0`` (an
OpenMP team of every core, as before issue 16) against ``ALSModel.fold_in`` (the calling
thread). Run it once as it is and once beside a CPU hog, in the same session:

    python -m bench.foldin_bench quiet
    python3 -c "while True: pass" & python -m bench.foldin_bench with-hog; kill %1
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recommender.models import ALSModel

log = logging.getLogger("bench.foldin")


def percentiles(fn: Callable[[], object], n: int = 400) -> str:
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms"


def main(label: str) -> None:
    matrix = sp.random(2000, 10000, density=0.01, format="csr", random_state=1, dtype=np.float32)
    matrix.data[:] = 1
    model = ALSModel(factors=128, iterations=2, num_threads=0).fit(matrix)
    request = sp.csr_matrix(matrix[:1])

    def team() -> object:  # what the cold path did: implicit with num_threads=0
        return model.model.recalculate_user(np.arange(1), model._confidence(request))

    def calling_thread() -> object:
        return model.fold_in(request)

    log.info(
        "%s: team of num_threads=0: %s | calling thread: %s",
        label,
        percentiles(team),
        percentiles(calling_thread),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(sys.argv[1] if len(sys.argv) > 1 else "run")
