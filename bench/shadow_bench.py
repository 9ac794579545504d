"""Does a shadow run slow the live path? Latency of `GET /recommendations` (known users, ML-100K,
a real uvicorn) with the shadow off and on (every request sampled), in alternating rounds in
one run, side by side.

Command: ``python -m bench.shadow_bench --work /tmp/shadowbench`` (writes
``bench/results/shadow.json`` and the section in docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import httpx
import numpy as np

from bench.markdown import replace_section
from bench.repo import ROOT, feast_apply, fresh_settings
from bench.servers import metric_sum
from recommender.featurestore.repo import feast_cli_env, teardown_project
from tests.support.server import serve_api

log = logging.getLogger("bench.shadow_bench")


def _round(base: str, users: list[str], n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=10) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = c.get("/recommendations", params={"user_id": users[i % len(users)], "k": 10})
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/shadowbench"))
    parser.add_argument("--project", default="shadowbench")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("feast").setLevel(logging.WARNING)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from recommender.lifecycle.experiment_ops import set_shadow
    from recommender.pipeline.ingest import fetch_movielens
    from recommender.pipeline.nightly import run_nightly
    from recommender.pipeline.train import train

    settings = fresh_settings(args.work, args.project, catalog_poll_seconds=0.2)
    fetch_movielens(settings, "ml-100k")
    feast_apply(settings.feature_repo, feast_cli_env(settings))
    manifest = run_nightly(settings, retrain=True)
    candidate = train(settings.replace(als_factors=64), publish=False).version
    env = {
        "RECO_FEAST_PROJECT": settings.feast_project,
        "RECO_FEATURE_REPO": str(settings.feature_repo),
        "RECO_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RECO_CATALOG_POLL_SECONDS": "0.2",
        "RECO_LOG_LEVEL": "WARNING",
    }
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        with serve_api(env, 18931) as base:
            users = [str(u) for u in range(1, 944)]
            _round(base, users, 200)  # warm-up
            for _ in range(args.rounds):
                for mode in ("off", "on"):
                    set_shadow(settings, candidate if mode == "on" else None, 1.0)
                    time.sleep(1.0)
                    results[mode] += _round(base, users, args.requests)
            scored = metric_sum(base, 'reco_shadow_requests_total{outcome="scored"}')
            dropped = metric_sum(base, 'reco_shadow_requests_total{outcome="dropped_busy"}')
            shadow_ms = 1000 * metric_sum(base, "reco_shadow_duration_seconds_sum") / max(scored, 1)
    finally:
        teardown_project(settings)
    summary = {
        mode: {
            "requests": len(v),
            "p50_ms": round(float(np.percentile(v, 50)) * 1000, 3),
            "p99_ms": round(float(np.percentile(v, 99)) * 1000, 3),
            "mean_ms": round(float(np.mean(v)) * 1000, 3),
        }
        for mode, v in results.items()
    }
    summary["ratio_on_off"] = {
        k: round(summary["on"][k] / summary["off"][k], 3) for k in ("p50_ms", "p99_ms", "mean_ms")
    }
    summary["shadow"] = {"scored": scored, "dropped_busy": dropped, "mean_ms": round(shadow_ms, 3)}
    summary["production"] = manifest.model_version
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "shadow.json").write_text(json.dumps(summary, indent=1))
    rows = [
        "| shadow | requests | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
    ]
    for m in ("off", "on"):
        r = summary[m]
        rows.append(f"| {m} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | {r['mean_ms']} |")
    q = summary["ratio_on_off"]
    rows.append(f"| on / off | | {q['p50_ms']}× | {q['p99_ms']}× | {q['mean_ms']}× |")
    rows.append("")
    rows.append(
        f"Shadow candidate (ALS, 64 factors, ranked in real time): {int(scored)} requests "
        f"scored, {int(dropped)} dropped because the worker was busy, {shadow_ms:.2f} ms each."
    )
    section = (
        "<!-- shadow:start -->\n"
        "## Shadow runs: the live path with and without a shadow candidate\n\n"
        "Command: `python -m bench.shadow_bench --work /tmp/shadowbench`. ML-100K, one uvicorn "
        "worker, one sequential client on loopback, known users (the precomputed path), "
        f"{args.rounds} alternating rounds of {args.requests} requests per mode, every request "
        "sampled for the shadow when it is on.\n\n" + "\n".join(rows) + "\n<!-- shadow:end -->"
    )
    replace_section(
        ROOT / "docs" / "benchmarks.md", "<!-- shadow:start -->", "<!-- shadow:end -->", section
    )
    print(json.dumps(summary, indent=1))  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    main()
