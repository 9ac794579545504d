"""The accuracy/diversity trade-off of the MMR re-rank (``RECO_DIVERSITY``) on the served
paths: the ML replay (trained before the 80% time quantile, each path scored on what its users
did after) at several values of the knob, NDCG@10 beside intra-list diversity, coverage and
novelty per path.

    python -m bench.diversity_tradeoff --dataset ml-100k
    python -m bench.diversity_tradeoff --dataset ml-1m

Results: ``bench/results/diversity_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from bench.repo import ROOT, fresh_settings
from recommender.evaluation.metrics import mean_metrics
from recommender.evaluation.replay import beyond_accuracy, replay_served
from recommender.evaluation.tuning import DEFAULT_PARAMS
from recommender.pipeline.evaluate import load_dataset

LAMBDAS = (0.0, 0.1, 0.3, 0.5)
PATHS = ("precomputed", "realtime n=1", "realtime n=3", "realtime n=5", "realtime profile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="diversity-") as work:
        tables = load_dataset(fresh_settings(Path(work), "unused"), args.dataset)
    inter = tables["interactions"]
    cutoff = inter["event_timestamp"].quantile(0.8).to_pydatetime()
    profiles = tables["users"].set_index("user_id")
    titles = tables["items"].set_index("item_id")["title"]
    als = {k: v for k, v in DEFAULT_PARAMS["als"].items() if k != "random_state"}
    rows = []
    for lam in LAMBDAS:
        t0 = time.perf_counter()
        bundle, _, served = replay_served(inter, profiles, titles, cutoff, als, diversity=lam)
        describe = beyond_accuracy(bundle, 10)
        for path in PATHS:
            mine = [s for s in served if s.path == path]
            if not mine:
                continue
            metrics = mean_metrics([s.items for s in mine], [s.truth for s in mine], (10,))
            rows.append(
                {
                    "diversity": lam,
                    "path": path,
                    "users": len(mine),
                    "ndcg@10": round(metrics["ndcg@10"], 4),
                    **{k: round(v, 4) for k, v in describe([s.items for s in mine]).items()},
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
    result = {
        "command": f"python -m bench.diversity_tradeoff --dataset {args.dataset}",
        "dataset": args.dataset,
        "cutoff": str(cutoff),
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / f"diversity_{args.dataset}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(r)  # noqa: T201


if __name__ == "__main__":
    main()
