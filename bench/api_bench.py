"""HTTP benchmark of the serving paths with wrk on loopback (not part of the tests).

Sets up ML-100K in a temporary Feast project (never touching a running demo), starts uvicorn
with one worker, and drives three routes of the same app for the same duration:

* warm: ``GET /recommendations`` for known users (precomputed list from Redis through Feast)
* cold: ``POST /recommendations`` with three recent items (fold-in + FAISS, real time)
* constant: a constant-JSON route in the same app and server

Usage: ``.venv/bin/python -m bench.api_bench [--duration 10] [--connections 8]``.
Prints p50/p99 latency, req/s and the ratios, and writes bench/results/api.json and
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
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

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- api-bench:start -->", "<!-- api-bench:end -->"
log = logging.getLogger("bench")

WARM_LUA = """
local users = {}
for i = 1, 943 do users[i] = tostring(i) end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/recommendations?k=10&user_id=" .. users[(n % 943) + 1])
end
"""
COLD_LUA = """
local n = 0
request = function()
  n = n + 1
  local a, b, c = (n % 1682) + 1, ((n * 7) % 1682) + 1, ((n * 13) % 1682) + 1
  local body = string.format('{"k":10,"recent_item_ids":["%d","%d","%d"]}', a, b, c)
  return wrk.format("POST", "/recommendations", {["Content-Type"] = "application/json"}, body)
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(env: dict[str, str]) -> None:
    bin_dir = Path(sys.executable).parent
    env = {**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}"}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "pipeline.sh")],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not become ready")


def _to_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def run_wrk(url: str, lua: str | None, duration: int, connections: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua or "")
    if lua:
        cmd[1:1] = ["-s", fh.name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(fh.name)
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": _to_ms(pct["50"]),
        "p99_ms": _to_ms(pct["99"]),
        "rps": rps,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="reco-bench-"))
    repo = work / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
    port = _free_port()
    env = {
        **os.environ,
        "RECO_FEAST_PROJECT": f"bench_{uuid.uuid4().hex[:8]}",
        "RECO_FEATURE_REPO": str(repo),
        "RECO_ARTIFACTS_DIR": str(work / "artifacts"),
        "RECO_CACHE_DIR": str(ROOT / ".cache"),
        "RECO_LOG_LEVEL": "WARNING",
        "OPENBLAS_NUM_THREADS": "1",
    }
    log.info("setting up ML-100K in %s (project %s)", work, env["RECO_FEAST_PROJECT"])
    _setup(env)
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
    results: dict[str, dict[str, float]] = {}
    try:
        _wait_ready(f"{base}/ready")
        for name, path, lua in (
            ("constant", "/constant", None),
            ("warm", "/recommendations", WARM_LUA),
            ("cold", "/recommendations", COLD_LUA),
        ):
            run_wrk(base + path, lua, 2, args.connections)  # warm-up
            results[name] = run_wrk(base + path, lua, args.duration, args.connections)
            log.info("%-8s %s", name, results[name])
    finally:
        server.terminate()
        server.wait(timeout=30)
        from recommender.config import Settings
        from recommender.store import open_store

        open_store(Settings(feast_project=env["RECO_FEAST_PROJECT"], feature_repo=repo)).teardown()
        shutil.rmtree(work, ignore_errors=True)

    ratios = {
        "warm_over_constant_rps": results["warm"]["rps"] / results["constant"]["rps"],
        "cold_over_warm_rps": results["cold"]["rps"] / results["warm"]["rps"],
    }
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "command": f"python -m bench.api_bench --duration {args.duration} "
        f"--connections {args.connections}",
        "wrk": f"1 thread, {args.connections} connections, {args.duration}s per route, "
        "after a 2s warm-up; uvicorn 1 worker",
    }
    out = {"meta": meta, "results": results, "ratios": ratios}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "api.json").write_text(json.dumps(out, indent=2))
    _write_markdown(out)
    log.info("ratios: %s", {k: round(v, 3) for k, v in ratios.items()})


def _write_markdown(out: dict) -> None:
    r, m = out["results"], out["meta"]
    rows = "\n".join(
        f"| {name} | {r[name]['p50_ms']:.2f} | {r[name]['p99_ms']:.2f} | {r[name]['rps']:.0f} "
        f"| {r[name]['non_2xx']} |"
        for name in ("constant", "warm", "cold")
    )
    section = f"""{START}
## API serving paths (ML-100K, loopback, wrk)

Command: `{m["command"]}` — {m["wrk"]}. Machine: {m["machine"]}, shared and noisy;
measured {m["date"]}. Server and load generator share the two cores.

| route | p50 ms | p99 ms | req/s | non-2xx |
|---|---|---|---|---|
{rows}

Ratios (same run): warm / constant throughput = **{out["ratios"]["warm_over_constant_rps"]:.2f}**,
cold / warm throughput = **{out["ratios"]["cold_over_warm_rps"]:.2f}**.

* constant: `GET /constant`, a constant JSON body from the same app (bench/app.py).
* warm: `GET /recommendations?user_id=<1..943>&k=10`, precomputed list read from Redis through
  Feast's `get_online_features` (feature service `serving_precomputed_v1`).
* cold: `POST /recommendations` with three recent item ids: ALS fold-in + exact FAISS search
  over 1,682 items.
{END}"""
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if START in old and END in old:  # replace only this script's section, keep the notes
        head, rest = old.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
