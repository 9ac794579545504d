"""HTTP benchmark of the serving paths with wrk on loopback (not part of the tests).

Builds a synthetic catalog (default 10k users x 50k items, ~0.5M interactions) in a temporary
Feast project (never touching a running demo), trains and runs the nightly job through the real
code, starts uvicorn with one worker, and measures in one run:

* constant: ``GET /constant``, constant JSON from the same app, middleware and server;
* warm: ``GET /recommendations`` for known users (stored list, one Redis HMGET);
* cold: ``POST /recommendations`` for a new user id with three recent items (Redis read,
  ALS fold-in, IVF search over the catalog);
* warm and cold again, paced at half of their maximum throughput, for p99;
* events: ``POST /events`` and ``POST /events/batch`` (10 per request), acknowledged vs stored.

Usage: ``.venv/bin/python -m bench.api_bench [--duration 10] [--users 10000] [--items 50000]
[--profile]``. Writes bench/results/api.json and the section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import wrk
from bench.markdown import write_markdown
from bench.repo import copy_feature_repo, feast_apply
from recommender.featurestore.repo import feast_cli_env

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lua_list(name: str, values: list[str]) -> str:
    return f"local {name} = {{" + ",".join(f'"{v}"' for v in values) + "}\n"


def scripts(users: list[str], items: list[str]) -> dict[str, str]:
    head = _lua_list("users", users) + _lua_list("items", items) + "local n = 0\n"
    pick = "items[(n * {m} % #items) + 1]"
    return {
        "warm": head
        + """request = function()
  n = n + 1
  return wrk.format("GET", "/recommendations?k=10&user_id=" .. users[(n % #users) + 1])
end
""",
        "cold": head
        + f"""request = function()
  n = n + 1
  local body = string.format('{{"k":10,"user_id":"new%d","recent_item_ids":["%s","%s","%s"]}}',
    n, {pick.format(m=1)}, {pick.format(m=7)}, {pick.format(m=13)})
  return wrk.format("POST", "/recommendations", {{["Content-Type"] = "application/json"}}, body)
end
""",
        "event": head
        + f"""request = function()
  n = n + 1
  local body = string.format('{{"user_id":"ev%d","item_id":"%s","event_type":"click"}}',
    n % 5000, {pick.format(m=3)})
  return wrk.format("POST", "/events", {{["Content-Type"] = "application/json"}}, body)
end
""",
        "batch": head
        + """request = function()
  n = n + 1
  local parts = {}
  for j = 1, 10 do
    parts[j] = string.format('{"user_id":"eb%d","item_id":"%s","event_type":"view"}',
      (n * 10 + j) % 5000, items[((n * 10 + j) * 11 % #items) + 1])
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/events/batch", {["Content-Type"] = "application/json"}, body)
end
""",
    }


def setup(work: Path, project: str, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from jobs.nightly import run_nightly
    from recommender.config import Settings
    from recommender.data.synthetic import synthetic_catalog
    from recommender.data.tables import build_tables, write_tables

    repo = copy_feature_repo(work)
    settings = Settings(
        feast_project=project,
        feature_repo=repo,
        artifacts_dir=work / "artifacts",
        cache_dir=ROOT / ".cache",
        redis_url=os.environ.get("RECO_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    timings = {}
    t0 = time.perf_counter()
    raw = synthetic_catalog(args.users, args.items, args.interactions, days=14, seed=1)
    write_tables(build_tables(*raw), settings.data_dir)
    timings["data_s"] = time.perf_counter() - t0
    feast_apply(repo, feast_cli_env(settings))
    t0 = time.perf_counter()
    manifest = run_nightly(settings, retrain=True)
    timings["train_and_nightly_s"] = time.perf_counter() - t0
    timings["nightly_phases_s"] = manifest.durations_s
    return settings, timings


def profile(pid: int, seconds: int, url: str, lua: str) -> list[tuple[str, float]]:
    """py-spy samples of the server during a warm load; share of samples by leaf frame."""
    if shutil.which("py-spy") is None and not Path(sys.executable).with_name("py-spy").exists():
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = Path(tempfile.mkdtemp()) / "raw.txt"
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--gil",
            "--rate",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wrk.run(url, lua, seconds, 8)
    proc.wait(60)
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines() if out.exists() else []:
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        # attribute samples to the first frame of our code or of a library, innermost first
        leaf = frames[-1]
        counts[leaf] = counts.get(leaf, 0) + int(n)
    total = sum(counts.values()) or 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
    return [(frame, round(100 * n / total, 1)) for frame, n in top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=500_000)
    parser.add_argument("--profile", action="store_true", help="py-spy the warm path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    from recommender.events.log import read_events
    from recommender.featurestore.repo import open_store
    from recommender.training.artifacts import load_bundle

    work = Path(tempfile.mkdtemp(prefix="reco-bench-"))
    project = f"bench_{uuid.uuid4().hex[:8]}"
    log.info(
        "setting up %d users x %d items in %s (project %s)", args.users, args.items, work, project
    )
    settings, timings = setup(work, project, args)
    bundle = load_bundle(settings.artifacts_dir)
    rng = np.random.default_rng(0)
    lua = scripts(
        rng.choice(bundle.users.ids, 5000).tolist(), rng.choice(bundle.items.ids, 3000).tolist()
    )
    events_dir = work / "events"
    port = _free_port()
    env = {
        **os.environ,
        "RECO_FEAST_PROJECT": project,
        "RECO_FEATURE_REPO": str(settings.feature_repo),
        "RECO_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RECO_EVENTS_DIR": str(events_dir),
        "RECO_LOG_LEVEL": "WARNING",
        "OPENBLAS_NUM_THREADS": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.app:create_bench_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    r: dict[str, dict[str, float]] = {}
    top: list[tuple[str, float]] = []
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        d, c = args.duration, args.connections
        for name, path, script in (
            ("constant", "/constant", ""),
            ("warm", "/recommendations", lua["warm"]),
            ("cold", "/recommendations", lua["cold"]),
        ):
            wrk.run(base + path, script, 2, c)  # warm-up
            r[name] = wrk.run(base + path, script, d, c)
            log.info("%-14s %s", name, r[name])
        for name in ("warm", "cold"):
            r[f"{name}_half"] = wrk.run(
                base + "/recommendations", lua[name], d, c, rate=r[name]["rps"] / 2
            )
            log.info("%-14s %s", f"{name}_half", r[f"{name}_half"])
        for name, per in (("event", 1), ("batch", 10)):
            r[f"events_{name}"] = wrk.run(base + "/events", lua[name], d, c)
            r[f"events_{name}"]["events_acked"] = (
                r[f"events_{name}"]["requests"] - r[f"events_{name}"]["non_2xx"]
            ) * per
            log.info("%-14s %s", f"events_{name}", r[f"events_{name}"])
        if args.profile:
            top = profile(server.pid, 8, base + "/recommendations", lua["warm"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = len(read_events(events_dir))
    acked = r["events_event"]["events_acked"] + r["events_batch"]["events_acked"]
    open_store(settings).teardown()
    shutil.rmtree(work, ignore_errors=True)

    out = {
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}",
            "command": f"python -m bench.api_bench --duration {args.duration} --users "
            f"{args.users} --items {args.items} --interactions {args.interactions}"
            + (" --profile" if args.profile else ""),
            "catalog": {"users": len(bundle.users), "items": len(bundle.items)},
            "index": bundle.index.info,
            "setup": timings,
            "wrk": f"1 thread, {args.connections} connections, {args.duration}s per run after a "
            "2s warm-up; uvicorn 1 worker; server and wrk share the machine",
        },
        "results": r,
        "events": {"acknowledged": acked, "stored": stored, "lost": max(0, acked - stored)},
        "ratios": {
            "warm_over_constant_rps": r["warm"]["rps"] / r["constant"]["rps"],
            "cold_over_warm_rps": r["cold"]["rps"] / r["warm"]["rps"],
        },
        "profile_warm": top,
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "api.json").write_text(json.dumps(out, indent=2, default=str))
    write_markdown(out, ROOT / "docs" / "benchmarks.md")
    log.info("ratios %s; events %s", out["ratios"], out["events"])


if __name__ == "__main__":
    main()
