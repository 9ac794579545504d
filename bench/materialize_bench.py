"""Materialization at scale: Feast's default (local, dask) engine against ``StreamingEngine``.

    python -m bench.materialize_bench --users 20000 100000

For each ``--users``: ``reco data synthetic`` (items = users / 4, interactions = 20 x users, as
the 200k x 50k x 4M nightly), then per engine a copy of the Feast repo in its own project
(``feast apply``), and the nightly job's ``materialize()`` run twice, each in a process of its
own: the first load (full, every view) and the next night's incremental one (nothing new). Wall
time and peak RSS are the child's own (``os.wait4``). The two projects' Redis hashes are then
compared for a sample of users and every item. Redis is a ``redis-server`` of the benchmark's
own on a free port unless ``--redis-url`` is given (then the projects are torn down after).

Results: ``bench/results/materialize.json`` (one entry per size, replaced on a re-run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.support.repo import without_batch_engine

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results" / "materialize.json"
ENGINES = {
    "feast_local": "",
    "streaming": "\nbatch_engine:\n  type: recommender.featurestore.engine.StreamingEngine\n"
    "  batch_rows: 50000\n",
}
TABLES = ("users", "items", "user_activity", "item_stats", "user_recent_items")


def _env(repo: Path, project: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECO_")}
    env.update(
        RECO_FEATURE_REPO=str(repo),
        RECO_ARTIFACTS_DIR=str(repo.parent / "artifacts"),
        RECO_FEAST_PROJECT=project,
        RECO_REDIS_URL=redis_url,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall time, peak RSS (its own, by wait4) and stdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "out": stdout,
    }


def _repo(work: Path, engine: str, data: Path) -> Path:
    repo = work / engine / "feature_repo"
    shutil.rmtree(repo.parent, ignore_errors=True)
    repo.mkdir(parents=True)
    for name in ("definitions.py", ".feastignore"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    yaml = without_batch_engine((ROOT / "feature_repo" / "feature_store.yaml").read_text())
    (repo / "feature_store.yaml").write_text(yaml + ENGINES[engine])
    shutil.copytree(data, repo / "data", copy_function=os.link)  # the same files, hard-linked
    return repo


def _own_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def _compare(projects: list[str], redis_url: str, users: int, items: int) -> dict[str, int]:
    """Entities whose Redis hash differs between the projects (a sample of users, all items)."""
    import redis
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    client = redis.Redis.from_url(redis_url)
    step = max(1, users // 5000)
    entities = [("user_id", f"u{u}") for u in range(0, users, step)]
    entities += [("item_id", f"i{i}") for i in range(items)]
    hashes = []
    for project in projects:
        pipe = client.pipeline(transaction=False)
        for key, value in entities:
            entity = EntityKey(join_keys=[key], entity_values=[Value(string_val=value)])
            pipe.hgetall(_redis_key(project, entity, 3))
        hashes.append(pipe.execute())
    differing = sum(a != b for a, b in zip(*hashes, strict=True))
    empty = sum(not a for a in hashes[0])
    return {"compared": len(entities), "differing": differing, "absent": empty}


def child(args: argparse.Namespace) -> None:
    """One ``materialize()`` of the nightly job (settings from the RECO_* environment)."""
    from recommender.config import Settings
    from recommender.featurestore.repo import materialize, open_store, redis_client

    settings = Settings()
    earliest = datetime(2025, 12, 1, tzinfo=timezone.utc)  # the synthetic data starts 2026
    t0 = time.perf_counter()
    done = materialize(
        open_store(settings), redis_client(settings, 600), datetime.now(timezone.utc), earliest
    )
    print(json.dumps({"materialize_s": round(time.perf_counter() - t0, 2), "views": done}))  # noqa: T201


def bench_size(args: argparse.Namespace, users: int, redis_url: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from recommender.config import Settings
    from recommender.featurestore.repo import feast_cli_env

    work = args.work / f"users_{users}"
    items, interactions = max(users // 4, 100), 20 * users
    data_repo = work / "data_repo" / "feature_repo"
    shutil.rmtree(work, ignore_errors=True)
    data_repo.mkdir(parents=True)
    shutil.copy(ROOT / "feature_repo" / "feature_store.yaml", data_repo)
    env = _env(data_repo, "unused", redis_url)
    cmd = [
        str(BIN / "reco"),
        "data",
        "synthetic",
        f"--users={users}",
        f"--items={items}",
        f"--interactions={interactions}",
        "--days=60",
        "--seed=1",
    ]
    generated = _run(cmd, env)
    rows = {
        t: pq.ParquetFile(data_repo / "data" / f"{t}.parquet").metadata.num_rows for t in TABLES
    }
    result: dict[str, Any] = {
        "users": users,
        "items": items,
        "interactions": interactions,
        "rows": rows,
        "generate_s": generated["seconds"],
        "engines": {},
    }
    projects = []
    for engine in ENGINES:
        project = f"mbench_{engine}_{users}"
        repo = _repo(work, engine, data_repo / "data")
        env = _env(repo, project, redis_url)
        settings = Settings(feature_repo=repo, feast_project=project, redis_url=redis_url)
        feast_env = {**env, **feast_cli_env(settings)}
        _run([str(BIN / "feast"), "apply"], feast_env, cwd=repo)
        runs = {}
        for run in ("first", "next_night"):
            got = _run([sys.executable, "-m", "bench.materialize_bench", "--child"], env, cwd=ROOT)
            out = json.loads(got.pop("out").strip().splitlines()[-1])
            runs[run] = {**got, **out}
            print(f"users={users} {engine} {run}: {runs[run]}", flush=True)  # noqa: T201
        result["engines"][engine] = runs
        projects.append(project)
    result["check"] = _compare(projects, redis_url, users, items)
    print(f"users={users} check: {result['check']}", flush=True)  # noqa: T201
    if args.redis_url:  # the shared Redis: remove what we wrote
        _teardown(work, projects, redis_url)
    return result


def _teardown(work: Path, projects: list[str], redis_url: str) -> None:
    import redis

    from recommender.featurestore.repo import materialized_key

    client = redis.Redis.from_url(redis_url)
    for project in projects:
        for key in client.scan_iter(match=f"*{project}", count=1000):
            client.delete(key)
        client.delete(materialized_key(project))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mat_bench")
    parser.add_argument("--redis-url", help="an existing Redis (default: a server of our own)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    args.work.mkdir(parents=True, exist_ok=True)
    server, redis_url = (None, args.redis_url) if args.redis_url else _own_redis(args.work)
    try:
        path: Path = args.results
        results = json.loads(path.read_text()) if path.exists() else {}
        for users in args.users:
            entry = bench_size(args, users, redis_url)
            entry["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
            entry["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            results[str(users)] = entry
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
