"""The whole night at several sizes: every step's seconds and peak RSS, and how they grow.

    python -m bench.nightly_bench --sizes 100000,300000,1000000        # the issue-14 table
    python -m bench.nightly_bench --sizes 20000 --docs ''               # a quick check

Per size (``--per-user`` interactions per user, ``--items`` items, over 180 days), each step is
its own process, timed, with its peak RSS from ``os.wait4`` (the largest single process of the
step's tree that had ended by then; a night's writer processes are reported by the night's own
manifest as ``largest_child``):

1. ``reco data synthetic``           6. ``reco nightly``                (one day later, incremental)
2. ``feast apply``                   7. ``feast materialize-incremental`` (by hand, the CLI)
3. ``reco train``                    8. ``feast materialize`` of every view from scratch (the CLI)
4. ``reco nightly``   (full backfill) 9. ``reco serve``: seconds until ``/ready``, RSS then
5. one day of new events in the event log (``--per-user``/180 per user, known users and items)

Each size gets a redis-server of its own (``--redis-port`` + i, no persistence), shut down
afterwards; nothing else is touched. ``redis-benchmark -t set -P 64`` with values of the lists'
size runs against it in the same invocation, for the list-write ratio.

Results: ``--out`` (JSON) and the nightly-bench section of ``--docs``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.markdown import replace_section
from bench.repo import copy_feature_repo
from bench.scale_report import markdown
from bench.write_bench import redis_benchmark
from recommender.config import Settings
from recommender.contract.runs import RunManifest
from recommender.events.generate import one_day_of_events
from recommender.featurestore.repo import feast_cli_env

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- nightly-bench:start -->", "<!-- nightly-bench:end -->"
BIN = Path(sys.executable).parent
log = logging.getLogger("bench.nightly")


class StepFailed(RuntimeError):
    """A step's process exited non-zero."""


def run_step(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, peak RSS (wait4) and stdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise StepFailed(f"{' '.join(cmd)} exited {code}:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "out": stdout,
    }


def _env(work: Path, project: str, redis_url: str, engine: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECO_", "FEAST_"))}
    env.update(
        RECO_FEATURE_REPO=str(work / "feature_repo"),
        RECO_ARTIFACTS_DIR=str(work / "artifacts"),
        RECO_FEAST_PROJECT=project,
        RECO_REDIS_URL=redis_url,
        RECO_ENGINE=engine,
        OPENBLAS_NUM_THREADS="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def run_meta(module: str, **fields: Any) -> dict[str, Any]:
    """A result file's ``meta``: the command as run, when, on what, plus ``fields``."""
    return {
        "command": f"python -m {module} " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        **fields,
    }


def _own_redis(port: int, work: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=work,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], check=True, capture_output=True, timeout=2
            )
            return proc
        except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"redis-server on port {port} did not answer")


def _redis_used_mb(port: int) -> float:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True
    ).stdout
    used = next(line for line in out.splitlines() if line.startswith("used_memory:"))
    return round(int(used.split(":")[1]) / 2**20)


def _night(env: dict[str, str]) -> dict[str, Any]:
    step = run_step([str(BIN / "reco"), "nightly"], env)
    result = json.loads(step.pop("out").strip().splitlines()[-1])
    path = Path(env["RECO_ARTIFACTS_DIR"]) / "runs" / f"{result['run_id']}.json"
    manifest = RunManifest.model_validate_json(path.read_text())
    if manifest.status != "succeeded":
        raise StepFailed(f"night {manifest.run_id}: {manifest.status} {manifest.error}")
    step["manifest"] = manifest.model_dump(mode="json")
    return step


def _serve(env: dict[str, str], port: int, timeout: float = 300) -> dict[str, Any]:
    """Seconds from `reco serve` to a 200 on /ready, and the process's RSS then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "reco"), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise StepFailed(f"reco serve exited {proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise StepFailed(f"reco serve not ready after {timeout} s")
        ready = time.perf_counter() - t0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        return {"seconds": round(ready, 1), "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _checks(steps: dict[str, Any], users: int, events: int) -> dict[str, bool]:
    """What must hold whatever the timings: both nights published every user, the first
    loaded every view in full and the second continued incrementally with the day's events."""
    first, second = steps["night_1"]["manifest"], steps["night_2"]["manifest"]
    return {
        "night_1_wrote_every_user": first["users_written"] == first["users"] >= users * 0.95,
        "night_1_full_backfill": set(first["materialized"].values()) == {"full"},
        "night_2_ingested_the_day": second["events_ingested"] == events > 0,
        "night_2_incremental": set(second["materialized"].values()) == {"incremental"},
        "night_2_wrote_every_user": second["users_written"] == second["users"],
        "slots_alternate": first["slot"] != second["slot"],
    }


def bench_size(
    args: argparse.Namespace, users: int, port: int, steps: dict[str, Any], save: Any
) -> dict[str, Any]:
    work = args.work / f"{users}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = copy_feature_repo(work)
    project = f"scale{users}"
    url = f"redis://127.0.0.1:{port}/0"
    env = _env(work, project, url, args.engine)
    settings = Settings(feature_repo=repo, feast_project=project, redis_url=url)  # type: ignore[call-arg]
    feast = {**env, **feast_cli_env(settings)}
    reco = str(BIN / "reco")
    interactions = users * args.per_user
    server = _own_redis(port, work)
    try:

        def step(name: str, result: dict[str, Any]) -> None:
            result.pop("out", None)
            steps[name] = result
            save()  # a size that does not finish still reports the steps it did
            log.info(
                "%d users, %s: %s", users, name, {k: result[k] for k in ("seconds", "peak_rss_mb")}
            )

        synth = [f"--users={users}", f"--items={args.items}", f"--interactions={interactions}"]
        step("data", run_step([reco, "data", "synthetic", *synth, "--days=180", "--seed=1"], env))
        step("feast_apply", run_step([str(BIN / "feast"), "apply"], feast, cwd=repo))
        step("train", run_step([reco, "train"], env))
        step("night_1", _night(env))
        t0 = time.perf_counter()
        written, day = one_day_of_events(
            settings.data_dir, settings.event_log_dir, interactions // 180, seed=2
        )
        seconds = round(time.perf_counter() - t0, 1)
        step("events", {"seconds": seconds, "peak_rss_mb": 0, "events": written, "day": str(day)})
        step("night_2", _night(env))
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        cli = [str(BIN / "feast"), "materialize-incremental", now]
        step("feast_materialize_incremental", run_step(cli, feast, cwd=repo))
        cli = [str(BIN / "feast"), "materialize", "2000-01-01T00:00:00", now]
        step("feast_materialize_full", run_step(cli, feast, cwd=repo))
        step("api_start", _serve(env, args.api_port))
        steps["checks"] = _checks(steps, users, written)
        steps["redis_used_mb"] = _redis_used_mb(port)
        steps["redis_benchmark_set_per_s"] = redis_benchmark(url, 1400, 300_000)
    finally:
        server.terminate()
        server.wait(30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000,1000000", help="users, comma-separated")
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=20, help="interactions per user")
    ap.add_argument("--engine", default="local", choices=("local", "ray"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/reco-scale"))
    ap.add_argument("--redis-port", type=int, default=6420, help="first size's redis-server")
    ap.add_argument("--api-port", type=int, default=8420)
    ap.add_argument("--keep", action="store_true", help="keep each size's work folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nightly_bench.json")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"), help="'' for none")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other sizes already in --out (sizes run one invocation at a time)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sizes = [int(s) for s in args.sizes.split(",")]
    out: dict[str, Any] = {
        "meta": run_meta(
            "bench.nightly_bench", items=args.items, per_user=args.per_user, engine=args.engine
        ),
        "sizes": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and args.out.exists():
        earlier = json.loads(args.out.read_text())
        out["sizes"] = {k: v for k, v in earlier.get("sizes", {}).items() if int(k) not in sizes}
        out["meta"]["earlier"] = earlier.get("meta", {})

    def save() -> None:
        args.out.write_text(json.dumps(out, indent=2, default=str))

    for i, users in enumerate(sizes):
        steps = out["sizes"][str(users)] = {}
        try:
            bench_size(args, users, args.redis_port + i, steps, save)
        except StepFailed as exc:
            log.error("%d users failed: %s", users, exc)
            steps["failed"] = str(exc)[-3000:]
        save()
    if args.docs:
        replace_section(Path(args.docs), START, END, f"{START}\n{markdown(out)}\n{END}")
    if any("failed" in s for s in out["sizes"].values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
