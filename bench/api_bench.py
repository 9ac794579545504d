"""HTTP benchmark of the serving paths with wrk on loopback (not part of the tests).

Builds a synthetic catalog (default 10k users x 50k items, ~0.5M interactions) in its own Feast
project (never touching a running demo), trains and runs the nightly job through the real
code, then measures in one run, with 1 and with N uvicorn workers (as `reco serve` runs them):

* constant: ``GET /constant``, constant JSON from the same app, middleware and server;
* warm: ``GET /recommendations`` for known users (stored list, one Redis HMGET);
* cold: ``POST /recommendations`` for a new user id with three recent items (Redis read,
  ALS fold-in, ANN search over the catalog);
* feast: Feast's own feature server (``feast serve``, same workers) on the same repository
  and Redis data, ``POST /get-online-features`` of the live list service for the same users;
* each at 1 connection and under load (``--connections``), and again beside a CPU hog
  (``python3 -c "while True: pass"``); warm also paced at half of its maximum (p99);
* events (1 worker): ``POST /events`` and ``POST /events/batch``, acknowledged vs stored.

``--ranker`` trains the two-stage model too: warm reads its ranked lists, cold retrieves and
ranks per request (five retrievers, LightGBM).

Usage: ``flock /tmp/reco-bench.lock .venv/bin/python -m bench.api_bench [--duration 4]
[--users 10000] [--items 50000] [--workers N] [--work DIR] [--profile]``; ``--work`` keeps the
trained setup for the next run. Writes bench/results/api.json and its docs/benchmarks.md section.
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
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import servers, wrk
from bench.api_report import write_markdown
from bench.repo import copy_feature_repo, feast_apply
from recommender.featurestore.repo import feast_cli_env, teardown_project

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lua_list(name: str, values: list[str]) -> str:
    return f"local {name} = {{" + ",".join(f'"{v}"' for v in values) + "}\n"


def scripts(users: list[str], items: list[str], feast_service: str) -> dict[str, str]:
    head = _lua_list("users", users) + _lua_list("items", items) + "local n = 0\n"
    pick = "items[(n * {m} % #items) + 1]"
    return {
        "feast": head
        + f"""request = function()
  n = n + 1
  local body = '{{"feature_service":"{feast_service}","entities":{{"user_id":["'
    .. users[(n % #users) + 1] .. '"]}}}}'
  return wrk.format("POST", "/get-online-features", {{["Content-Type"] = "application/json"}}, body)
end
""",
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
    from recommender.config import Settings
    from recommender.data.synthetic import synthetic_catalog
    from recommender.data.tables import build_tables, write_tables
    from recommender.pipeline.nightly import run_nightly

    repo = copy_feature_repo(work)
    settings = Settings(
        feast_project=project,
        feature_repo=repo,
        artifacts_dir=work / "artifacts",
        cache_dir=ROOT / ".cache",
        redis_url=os.environ.get("RECO_REDIS_URL", "redis://127.0.0.1:6379/0"),
        ranker=args.ranker,
    )
    timings = {}
    t0 = time.perf_counter()
    # the ranker's three cut-offs two weeks apart need six weeks of history and labels
    days = 60 if args.ranker else 14
    raw = synthetic_catalog(args.users, args.items, args.interactions, days=days, seed=1)
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


def _prepare(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The trained setup in ``--work`` (reused when it is there), else a fresh temporary one."""
    from recommender.config import Settings

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="reco-bench-"))
    saved = work / "settings.json"
    if saved.exists():
        log.info("reusing the setup in %s", work)
        meta = json.loads((work / "setup.json").read_text())
        return Settings.model_validate_json(saved.read_text()), meta, work
    project = f"bench_{uuid.uuid4().hex[:8]}"
    log.info("setting up %d users x %d items in %s (%s)", args.users, args.items, work, project)
    settings, timings = setup(work, project, args)
    saved.write_text(settings.model_dump_json())
    (work / "setup.json").write_text(json.dumps(timings, default=str))
    return settings, timings, work


def _run_ours(base: str, lua: dict[str, str], args: argparse.Namespace, hog: bool) -> dict:  # type: ignore[type-arg]
    """constant, warm and cold at 1 connection and under load."""
    out = {}
    for name, path in (
        ("constant", "/constant"),
        ("warm", "/recommendations"),
        ("cold", "/recommendations"),
    ):
        script = lua.get(name, "")
        wrk.run(base + path, script, 1, args.connections)  # warm-up
        for conns in (1, args.connections):
            key = f"{name}@{conns}" + ("+hog" if hog else "")
            before = _blocks(base)
            out[key] = wrk.run(base + path, script, args.duration, conns)
            if name == "cold":  # requests per two-stage block (none without a ranker)
                count, total = (a - b for a, b in zip(_blocks(base), before, strict=True))
                out[key]["mean_block"] = round(total / count, 2) if count else None
            log.info("%-18s %s", key, out[key])
    return out


def _blocks(base: str) -> tuple[float, float]:
    """The server's two-stage blocks so far and the requests in them."""
    name = "reco_two_stage_block_size"
    return servers.metric_sum(base, f"{name}_count "), servers.metric_sum(base, f"{name}_sum ")


def _measure(settings, lua, args, workers: int, feast_probe: bytes) -> dict:  # type: ignore[no-untyped-def,type-arg]
    env = servers.bench_env(
        {
            "RECO_FEAST_PROJECT": settings.feast_project,
            "RECO_FEATURE_REPO": str(settings.feature_repo),
            "RECO_ARTIFACTS_DIR": str(settings.artifacts_dir),
            "RECO_REDIS_URL": settings.redis.url,
            "RECO_EVENTS_DIR": str(Path(args.events_dir)),
            "RECO_LOG_LEVEL": "WARNING",
        }
        | ({} if args.user_cache is None else {"RECO_USER_CACHE_ENTRIES": str(args.user_cache)})
    )
    r: dict = {}  # type: ignore[type-arg]
    with servers.ours(env, _free_port(), workers) as (base, pid):
        for hog in (False, True):
            with servers.cpu_hog(hog):
                r |= _run_ours(base, lua, args, hog)
        rate = r[f"warm@{args.connections}"]["rps"] / 2
        r["warm_half"] = wrk.run(
            base + "/recommendations", lua["warm"], args.duration, args.connections, rate=rate
        )
        log.info("%-18s %s", "warm_half", r["warm_half"])
        if workers == 1 and not args.skip_events:
            for name, per in (("event", 1), ("batch", 10)):
                got = wrk.run(base + "/events", lua[name], args.duration, args.connections)
                got["events_acked"] = (got["requests"] - got["non_2xx"]) * per
                r[f"events_{name}"] = got
                log.info("%-18s %s", f"events_{name}", got)
        if workers == 1 and args.profile:
            r["profile_warm"] = profile(pid, 6, base + "/recommendations", lua["warm"])
    feast_env = servers.bench_env(feast_cli_env(settings))
    with servers.feast_serve(
        settings.feature_repo, feast_env, _free_port(), workers, feast_probe
    ) as base:
        for hog in (False, True):
            with servers.cpu_hog(hog):
                wrk.run(base + "/get-online-features", lua["feast"], 1, args.connections)
                for conns in (1, args.connections):
                    key = f"feast@{conns}" + ("+hog" if hog else "")
                    r[key] = wrk.run(
                        base + "/get-online-features", lua["feast"], args.duration, conns
                    )
                    log.info("%-18s %s", key, r[key])
    return r


def main() -> None:
    from recommender.contract.published import live_lists
    from recommender.events.log import read_events
    from recommender.featurestore.names import precomputed_service
    from recommender.training.artifacts import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the N of 1 and N")
    parser.add_argument("--work", help="keep (or reuse) the trained setup in this directory")
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument(
        "--user-cache",
        type=int,
        default=None,
        help="RECO_USER_CACHE_ENTRIES (default: its default)",
    )
    parser.add_argument("--out", default="api.json", help="file name under bench/results/")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true", help="py-spy the warm path (1 worker)")
    parser.add_argument(
        "--ranker",
        action="store_true",
        help="train the two-stage ranker (RECO_RANKER): ranked lists warm, retrieve + rank cold",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    settings, timings, work = _prepare(args)
    args.events_dir = str(work / f"events-{uuid.uuid4().hex[:6]}")
    bundle = load_bundle(settings.artifacts_dir)
    live = live_lists(settings)
    if live is None:
        sys.exit("no live lists in the setup")
    rng = np.random.default_rng(0)
    users = rng.choice(bundle.users.ids, 5000).tolist()
    lua = scripts(
        users, rng.choice(bundle.items.ids, 3000).tolist(), precomputed_service(live.slot)
    )
    probe = json.dumps(
        {"feature_service": precomputed_service(live.slot), "entities": {"user_id": users[:1]}}
    ).encode()
    results = {f"w{n}": _measure(settings, lua, args, n, probe) for n in sorted({1, args.workers})}
    stored = len(read_events(Path(args.events_dir))) if Path(args.events_dir).exists() else 0
    w1 = results["w1"]
    acked = sum(w1.get(f"events_{k}", {}).get("events_acked", 0) for k in ("event", "batch"))
    if not args.work:
        teardown_project(settings)
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "meta": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}",
            "command": f"flock /tmp/reco-bench.lock python -m bench.api_bench --duration "
            f"{args.duration} --users {args.users} --items {args.items} --interactions "
            f"{args.interactions} --workers {args.workers}"
            + (" --profile" if args.profile else "")
            + (" --ranker" if args.ranker else ""),
            "catalog": {"users": len(bundle.users), "items": len(bundle.items)},
            "index": bundle.index.info,
            "setup": timings,
            "wrk": f"wrk -t1, 1 and {args.connections} connections, {args.duration} s per run "
            "after a 1 s warm-up; server, Redis and wrk share the machine",
            "workers": sorted({1, args.workers}),
            "connections": args.connections,
        },
        "results": results,
        "events": {"acknowledged": acked, "stored": stored, "lost": max(0, acked - stored)},
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / args.out).write_text(json.dumps(out, indent=2, default=str))
    if not args.no_docs:
        write_markdown(out, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
