"""Online-store write paths for the nightly lists, side by side in one run.

    python -m bench.write_bench [--rows 50000] [--feast-rows 5000] [--cpu-hog]

Writes the same top-100 lists (item ids drawn from a 50k catalog, float scores) into a
throw-away Feast project (``wb_<random>``, torn down at the end) and measures rows/s for:

* ``feast_default``: ``FeatureStore.write_to_online_store`` as configured (timestamp check);
* ``feast_skip_dedup``: the same with the Redis store's ``skip_dedup`` option;
* ``feast_protos_batch``: Feast's ``online_write_batch`` given ready-made protos (no
  DataFrame conversion), ``skip_dedup``;
* ``rowwise_writer``: the earlier fast writer (one ``hiredis.pack_command`` per row,
  ``tests/support/rowwise_lists.py``) + ``send_pipelined``, one process;
* ``fast_writer``: ``recommender.featurestore.writer``'s vectorised ``ListEncoder.batches``
  + ``send_batches``, one process, ``--batch`` rows per ``sendall`` (and ``fast_writer_b<n>``
  for each of ``--more-batches``);
* ``fast_writer_<n>proc``: the nightly job's ``ListWriterPool`` with n processes (each of
  ``--workers``; ``RECO_WRITE_WORKERS``), chunk handed over from the parent, as in the job;
  ``fast_writer_pool_in_thread``: the pool with 0 processes (in the calling thread);
* ``raw_pipelined_hset``: the already-encoded commands sent pipelined on one connection (the
  ceiling of a single writer);
* ``redis_benchmark_set``: ``redis-benchmark -P 64`` (50 clients) running ``SET`` with the same
  value size, the issue's reference (on keys of its own prefix, deleted afterwards).

``--cpu-hog`` runs the whole benchmark beside a busy loop (``python3 -c "while True: pass"``,
started and killed here) on this 2-core machine. Results: ``bench/results/write_bench.json``
(``write_bench_cpu_hog.json``) and the write-bench section of docs/benchmarks.md (both runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import redis

from bench.markdown import replace_section
from bench.repo import copy_feature_repo, feast_apply
from recommender.featurestore.repo import feast_cli_env
from tests.support.rowwise_lists import RowwiseListEncoder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("bench.write")
START, END = "<!-- write-bench:start -->", "<!-- write-bench:end -->"


def make_store(work: Path, project: str, redis_url: str):  # type: ignore[no-untyped-def]
    from recommender.config import Settings
    from recommender.data.synthetic import synthetic_catalog
    from recommender.data.tables import build_tables, write_tables
    from recommender.featurestore.repo import open_store

    repo = copy_feature_repo(work)
    settings = Settings(feast_project=project, feature_repo=repo, redis_url=redis_url)
    write_tables(build_tables(*synthetic_catalog(100, 50, 1000, seed=1)), settings.data_dir)
    feast_apply(repo, feast_cli_env(settings))
    return settings, open_store(settings)


def redis_benchmark(url: str, value_bytes: int, n: int) -> float | None:
    """SET/s of ``redis-benchmark -P 64`` (50 clients) with ``value_bytes`` values, on the
    server and database of ``url``.

    Its keys carry a prefix unique to this call (``wbench:<random>:<12 digits>``, not
    redis-benchmark's shared ``key:<n>``), and exactly those keys are deleted afterwards (SCAN
    MATCH on the prefix), also when it fails: every other key, in every database, stays."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        log.info("redis-benchmark not found (apt-get install redis-tools); skipping the reference")
        return None
    parsed = redis.connection.parse_url(url)
    prefix = f"wbench:{uuid.uuid4().hex}:"
    cmd = [
        exe,
        "-h",
        str(parsed.get("host", "127.0.0.1")),
        "-p",
        str(parsed.get("port", 6379)),
        "--dbnum",
        str(parsed.get("db", 0)),
        "-P",
        "64",
        "-n",
        str(n),
        "-r",
        str(n),
        "-q",
    ]
    if parsed.get("password"):
        cmd += ["-a", str(parsed["password"])]
        if parsed.get("username"):
            cmd += ["--user", str(parsed["username"])]
    # a custom command: `-t set` would write redis-benchmark's generic `key:__rand_int__`
    cmd += ["SET", f"{prefix}__rand_int__", "x" * value_bytes]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        delete_prefixed(url, prefix)
    found = re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))
    return float(found[-1]) if found else None


def delete_prefixed(url: str, prefix: str) -> int:
    """Delete the keys of ``url``'s database that start with ``prefix`` (a unique one, without
    glob characters); returns how many."""
    if any(c in prefix for c in "*?[]\\"):
        raise ValueError(f"not a literal key prefix: {prefix!r}")
    client = redis.Redis.from_url(url)
    deleted, batch = 0, []
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
    return deleted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000, help="rows for the fast paths")
    ap.add_argument("--feast-rows", type=int, default=5_000, help="rows for Feast's own paths")
    ap.add_argument("--top-n", type=int, default=100)
    ap.add_argument("--workers", default="0,1,2", help="processes of the pooled writer, each")
    ap.add_argument("--batch", type=int, default=1000, help="rows per sendall (RECO_WRITE_BATCH)")
    ap.add_argument("--more-batches", default="4000", help="other --batch values to measure")
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--cpu-hog", action="store_true", help="run beside a busy loop")
    ap.add_argument(
        "--out", type=Path, default=None, help="default bench/results/write_bench*.json"
    )
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    args.out = args.out or RESULTS / (
        "write_bench_cpu_hog.json" if args.cpu_hog else "write_bench.json"
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("feast").setLevel(logging.WARNING)
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import FloatList, Int32List, StringList, Value

    from recommender.featurestore.writer import (
        ListEncoder,
        ListWriterPool,
        send_batches,
        send_pipelined,
    )

    url = os.environ.get("RECO_REDIS_URL", "redis://127.0.0.1:6379/0")
    project = f"wb_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="write-bench-"))
    settings, store = make_store(work, project, url)
    client = redis.Redis.from_url(url)
    rng = np.random.default_rng(0)
    item_ids = np.array([f"i{i}" for i in range(args.items)])
    rows = rng.integers(0, args.items, (args.rows, args.top_n)).astype(np.int32)  # as scored
    scores = np.sort(rng.random((args.rows, args.top_n)).astype(np.float32), axis=1)[:, ::-1]
    users = [f"u{u}" for u in range(args.rows)]
    user_array = np.array(users)
    view = "user_recommendations_a"
    results: dict[str, dict[str, float]] = {}

    def record(name: str, n: int, seconds: float) -> None:
        results[name] = {"rows": n, "seconds": round(seconds, 3), "rows_per_s": n / seconds}
        log.info(f"{name:>22}: {n / seconds:>10,.0f} rows/s ({n} rows, {seconds:.2f}s)")

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.cpu_hog else None
    try:
        now = datetime.now(timezone.utc)
        nf = args.feast_rows
        frame = pd.DataFrame(
            {
                "user_id": users[:nf],
                "rec_item_ids": [item_ids[r].tolist() for r in rows[:nf]],
                "rec_scores": [s.tolist() for s in scores[:nf]],
                "model_version": "v1",
                "run_id": "r1",
                "rec_sources": [[] for _ in range(nf)],
                "rec_source_names": "als",
                "event_timestamp": pd.Timestamp(now),
            }
        )
        t0 = time.perf_counter()
        store.write_to_online_store(view, frame)
        record("feast_default", nf, time.perf_counter() - t0)

        store.config.online_store.skip_dedup = True
        frame["event_timestamp"] = pd.Timestamp(datetime.now(timezone.utc))
        t0 = time.perf_counter()
        store.write_to_online_store(view, frame)
        record("feast_skip_dedup", nf, time.perf_counter() - t0)

        t0 = time.perf_counter()
        mv, rid = Value(string_val="v1"), Value(string_val="r1")
        no_masks, names = Value(int32_list_val=Int32List()), Value(string_val="als")
        data = [
            (
                EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=u)]),
                {
                    "rec_item_ids": Value(string_list_val=StringList(val=item_ids[r].tolist())),
                    "rec_scores": Value(float_list_val=FloatList(val=s.tolist())),
                    "model_version": mv,
                    "run_id": rid,
                    "rec_sources": no_masks,
                    "rec_source_names": names,
                },
                now,
                None,
            )
            for u, r, s in zip(users[:nf], rows[:nf], scores[:nf], strict=True)
        ]
        store._get_provider().online_write_batch(  # Feast's own Redis write loop
            store.config, store.get_feature_view(view), data, None
        )
        record("feast_protos_batch", nf, time.perf_counter() - t0)

        del frame, data  # no GC scans over the Feast paths' objects
        rowwise = RowwiseListEncoder(project, view, item_ids, "v1", "r1", now)
        t0 = time.perf_counter()
        commands = rowwise.commands(users, rows, scores)
        encode_s = time.perf_counter() - t0
        send_pipelined(client, commands, args.batch)
        record("rowwise_writer", args.rows, time.perf_counter() - t0)
        results["rowwise_writer"]["encode_share"] = round(
            encode_s / results["rowwise_writer"]["seconds"], 3
        )

        encoder = ListEncoder(project, view, item_ids, "v1", "r1", now)
        if encoder.commands(users[:1000], rows[:1000], scores[:1000]) != commands[:1000]:
            raise RuntimeError("the vectorised encoder differs from the per-row one")
        for size in [args.batch, *(int(b) for b in args.more_batches.split(",") if b)]:
            name = "fast_writer" if size == args.batch else f"fast_writer_b{size}"
            t0 = time.perf_counter()
            sum(b.count for b in encoder.batches(user_array, rows, scores, size))
            encode_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            send_batches(client, encoder.batches(user_array, rows, scores, size))
            record(name, args.rows, time.perf_counter() - t0)
            results[name]["encode_only_rows_per_s"] = args.rows / encode_s

        for workers in (int(w) for w in args.workers.split(",")):
            pool = ListWriterPool(
                workers,
                url,
                None,
                args.batch,
                project=project,
                view=view,
                item_ids=item_ids.tolist(),
                model_version="v1",
                run_id="r1",
                timestamp=now,
            )
            try:
                pool.write(user_array[:10], rows[:10], scores[:10])  # start the workers
                t0 = time.perf_counter()
                pool.write(user_array, rows, scores)
                name = f"fast_writer_{workers}proc" if workers else "fast_writer_pool_in_thread"
                record(name, args.rows, time.perf_counter() - t0)
            finally:
                pool.close()

        t0 = time.perf_counter()
        send_pipelined(client, commands, args.batch)
        record("raw_pipelined_hset", args.rows, time.perf_counter() - t0)
        value_bytes = int(np.mean([len(c) for c in commands[:1000]]))

        ref = redis_benchmark(url, value_bytes, max(args.rows, 200_000))
        if ref:
            results["redis_benchmark_set"] = {"rows": 0, "seconds": 0.0, "rows_per_s": ref}
            log.info(f"{'redis_benchmark_set':>22}: {ref:>10,.0f} SET/s (-P 64, {value_bytes} B)")
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        store.teardown()
        shutil.rmtree(work, ignore_errors=True)

    ratios = {}
    if "redis_benchmark_set" in results:
        base = results["redis_benchmark_set"]["rows_per_s"]
        ratios = {k: round(v["rows_per_s"] / base, 3) for k, v in results.items()}
    out = {
        "meta": {
            "command": "python -m bench.write_bench " + " ".join(sys.argv[1:]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}",
            "payload_bytes": value_bytes,
            "top_n": args.top_n,
            "batch": args.batch,
            "cpu_hog": args.cpu_hog,
        },
        "results": results,
        "ratio_to_redis_benchmark": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    write_markdown(out, args.docs)
    log.info(json.dumps(ratios))


def write_markdown(out: dict, path: Path) -> None:  # type: ignore[type-arg]
    """The write-bench section: this run, and the run with the other ``--cpu-hog`` setting
    when its results file is there."""
    runs = [out]
    other = RESULTS / (
        "write_bench.json" if out["meta"].get("cpu_hog") else "write_bench_cpu_hog.json"
    )
    if other.exists():
        runs.append(json.loads(other.read_text()))
    runs.sort(key=lambda run: bool(run["meta"].get("cpu_hog")))
    tables = "\n\n".join(_table(run) for run in runs)
    section = f"""{START}
## Online-store writes of the nightly lists

Top-{out["meta"]["top_n"]} lists, {out["meta"]["payload_bytes"]} bytes per row (one HSET of 5
fields). Ratios are to `redis-benchmark -P 64` (50 clients) running `SET` with values of the same
size, in the same run. The target (issue 14) is the nightly job's writer at >= 0.5x.
`fast_writer` is the vectorised encoder (`recommender/featurestore/listencoder.py`, Arrow
kernels in `resp.py`) with one `sendall` per batch; `rowwise_writer` is the encoder before it
(one `hiredis.pack_command` per row); `fast_writer_<n>proc` is the job's `ListWriterPool`
with n processes, which receive each chunk pickled through a pipe (`fast_writer_pool_in_thread`:
`ListWriterPool(0)`, in the calling thread). "encode only" is the vectorised encoder without
Redis. On this 2-core machine Redis, the writer and the rest share two cores, so the numbers
move a lot between runs; compare ratios within one run.

{tables}
{END}"""
    replace_section(path, START, END, section)


def _table(out: dict) -> str:  # type: ignore[type-arg]
    m, r, ratio = out["meta"], out["results"], out["ratio_to_redis_benchmark"]
    rows = "\n".join(
        f"| {name} | {v['rows_per_s']:,.0f} | {ratio.get(name, float('nan')):.2f} |"
        + (f" {v['encode_only_rows_per_s']:,.0f} |" if "encode_only_rows_per_s" in v else " |")
        for name, v in r.items()
    )
    beside = "beside a CPU hog (`--cpu-hog`)" if m.get("cpu_hog") else "without a CPU hog"
    return f"""**{beside}**: `{m["command"]}`, {m["date"]}, {m["machine"]} (shared, noisy),
{m.get("batch", 1000)} rows per batch unless the name says otherwise.

| path | rows/s | x redis-benchmark | encode only, rows/s |
|---|---|---|---|
{rows}"""


if __name__ == "__main__":
    main()
