"""The nightly job at scale: phases, write rate against redis-benchmark, peak memory.

    python -m bench.nightly_bench --work /tmp/scale --prepare     # data + feast apply + train
    python -m bench.nightly_bench --work /tmp/scale --nights 2    # the measured runs

``--prepare`` generates ``reco data synthetic`` (default 1M users x 50k items x 20M
interactions over 180 days), applies the Feast repo (project ``--project``) and trains; those
timings are reported as setup. Each night is ``reco nightly`` in its own process (so its peak
RSS is its own): the first night also backfills the online store (full materialization),
later nights materialize incrementally. ``redis-benchmark -t set -P 64`` with values of the
lists' size runs in the same invocation, for the write-rate ratio.

Results: ``bench/results/nightly_bench.json`` and the nightly-bench section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.markdown import replace_section
from bench.repo import copy_feature_repo, feast_apply
from bench.write_bench import redis_benchmark
from recommender.config import Settings
from recommender.featurestore.repo import feast_cli_env

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- nightly-bench:start -->", "<!-- nightly-bench:end -->"
BIN = Path(sys.executable).parent
log = logging.getLogger("bench.nightly")


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECO_")}
    env.update(
        RECO_FEATURE_REPO=str(args.work / "feature_repo"),
        RECO_ARTIFACTS_DIR=str(args.work / "artifacts"),
        RECO_FEAST_PROJECT=args.project,
        RECO_REDIS_URL=args.redis_url,
        RECO_TOP_N=str(args.top_n),
        RECO_ENGINE=args.engine,
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0, proc.stdout


def prepare(args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    repo = copy_feature_repo(args.work)
    setup: dict[str, float] = {}
    setup["data_s"], _ = _run(
        [
            str(BIN / "reco"),
            "data",
            "synthetic",
            f"--users={args.users}",
            f"--items={args.items}",
            f"--interactions={args.interactions}",
            "--days=180",
            "--seed=1",
        ],
        env,
    )
    t0 = time.perf_counter()
    settings = Settings(feature_repo=repo, feast_project=args.project, redis_url=args.redis_url)  # type: ignore[call-arg]
    feast_apply(repo, feast_cli_env(settings))
    setup["feast_apply_s"] = time.perf_counter() - t0
    setup["train_s"], _ = _run([str(BIN / "reco"), "train"], env)
    log.info("prepared: %s", setup)
    return setup


def night(env: dict[str, str]) -> dict[str, Any]:
    wall, out = _run([str(BIN / "reco"), "nightly"], env)
    result = json.loads(out.strip().splitlines()[-1])
    manifest_path = Path(env["RECO_ARTIFACTS_DIR"]) / "runs" / f"{result['run_id']}.json"
    manifest = json.loads(manifest_path.read_text())
    return {"wall_s": round(wall, 1), "manifest": manifest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for repo and artifacts")
    ap.add_argument("--project", default="scale1m")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--interactions", type=int, default=20_000_000)
    ap.add_argument("--top-n", type=int, default=100)
    ap.add_argument("--engine", default="local", choices=("local", "ray"))
    ap.add_argument("--prepare", action="store_true", help="generate, apply and train first")
    ap.add_argument("--nights", type=int, default=2)
    ap.add_argument(
        "--redis-url", default=os.environ.get("RECO_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nightly_bench.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = _env(args)
    setup = prepare(args, env) if args.prepare else {}
    reference = redis_benchmark(args.redis_url, 1400, 300_000)
    nights = []
    for i in range(args.nights):
        got = night(env)
        m = got["manifest"]
        d = m["durations_s"]
        rate = m["users_written"] / d["encode_write_online"] if d.get("encode_write_online") else 0
        got["write_rows_per_s"] = round(rate)
        got["write_ratio"] = round(rate / reference, 3) if reference else None
        log.info("night %d: %s, write %.0f rows/s, peak %s", i + 1, d, rate, m["peak_rss_mb"])
        nights.append(got)
    out = {
        "meta": {
            "command": "python -m bench.nightly_bench " + " ".join(sys.argv[1:]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            "users": args.users,
            "items": args.items,
            "interactions": args.interactions,
            "top_n": args.top_n,
            "engine": args.engine,
        },
        "setup": setup,
        "redis_benchmark_set_per_s": reference,
        "nights": nights,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    write_markdown(out, args.docs)


def write_markdown(out: dict[str, Any], path: Path) -> None:
    m = out["meta"]
    lines = []
    for i, n in enumerate(out["nights"], 1):
        d, man = n["manifest"]["durations_s"], n["manifest"]
        total = sum(
            d.get(k, 0) for k in ("events", "load", "score_and_write", "materialize", "publish")
        )
        lines.append(
            f"| {i} | {d.get('load', 0):.0f} | {d.get('score', 0):.0f} | "
            f"{d.get('encode_write_online', 0):.0f} | {d.get('score_and_write', 0):.0f} | "
            f"{d.get('materialize', 0):.0f} | {d.get('publish', 0):.0f} | {total:.0f} | "
            f"{n['write_rows_per_s']:,} ({n['write_ratio']}x) | {man['peak_rss_mb']['self']:,.0f} |"
        )
    rows = "\n".join(lines)
    header = (
        "| night | load | score | write | score+write | materialize | publish | total "
        "| write rows/s (x redis-benchmark) | peak RSS MB |"
    )
    section = f"""{START}
## Nightly job at scale

Command: `{m["command"]}`, {m["date"]}, {m["machine"]} (shared, noisy). Data: `reco data
synthetic` with {m["users"]:,} users x {m["items"]:,} items x {m["interactions"]:,}
interactions; top-{m["top_n"]}; engine {m["engine"]}. redis-benchmark `-t set -P 64` in the
same run: {out["redis_benchmark_set_per_s"]:,.0f} SET/s. Seconds per phase (`score` and
`write` overlap inside `score+write`; `total` is the sum of the sequential phases).

{header}
|------|---|---|---|---|---|---|---|---|
{rows}

Setup (not part of a night): {json.dumps({k: round(v) for k, v in out["setup"].items()})}.
{END}"""
    replace_section(path, START, END, section)


if __name__ == "__main__":
    main()
