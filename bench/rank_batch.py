"""CPU of the two-stage real-time path per user when several new users are ranked in one
call (``rank_users`` on a block of 1, 4, 8, 16 users, as the API would if it batched
concurrent cold requests), in process, on a setup of bench.api_bench ``--ranker``.

Usage: ``flock /tmp/reco-bench.lock .venv/bin/python -m bench.rank_batch --work DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from api.main import create_app
from recommender.config import Settings
from recommender.ranking.model import RankingCatalog, UserBlock, rank_users
from recommender.ranking.onlinerows import entity_values
from recommender.serving.rerank import history_of, stack_histories


async def _measure(settings: Settings, sizes: list[int], rounds: int) -> dict[str, float]:
    app = create_app(settings)
    out: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        served, _ = app.state.runtime.require_served()
        bundle, items = served.bundle, served.ranking
        if bundle.ranking is None or items is None:
            raise SystemExit("the setup has no ranker: bench.api_bench --ranker builds one")
        rng = np.random.default_rng(0)
        for n in sizes:
            history = stack_histories(
                [history_of(bundle, None, rng.choice(3000, 3, replace=False)) for _ in range(n)]
            )
            ids = [f"new{i}" for i in range(n)]
            catalog = RankingCatalog(
                bundle.ranking,
                bundle.als,
                bundle.popularity.item_scores,
                items.genres,
                items.values,
                items.retrievers,
            )
            users = UserBlock(
                history, ids, entity_values({}, ids, user=True), pd.Timestamp.now(tz="UTC")
            )
            depth = bundle.ranking.ranker.manifest.depth * len(
                bundle.ranking.ranker.manifest.retrievers
            )
            rank_users(catalog, users, depth, with_provenance=False)
            t0 = time.process_time()
            for _ in range(rounds):
                rank_users(catalog, users, depth, with_provenance=False)
            out[f"{n}_users_ms_per_user"] = (time.process_time() - t0) / rounds / n * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    settings = Settings.model_validate_json((Path(args.work) / "settings.json").read_text())
    settings = settings.replace(log_level="WARNING")
    result = asyncio.run(_measure(settings, [1, 4, 8, 16], args.rounds))
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
