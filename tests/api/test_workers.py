"""`reco serve --workers 2`: two real uvicorn worker processes behind one port. The rate
limit holds for the configured rate across both, /metrics of either counts every worker's
requests, and each worker writes its own exposure segment (whole JSON lines only)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.mmap_dict import MmapedDict

from recommender.config import Settings
from tests.support.repo import ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RATE, BURST = 2.0, 4
REQUESTS = 60


@pytest.fixture(scope="module")
def two_workers(trained_repo: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("workers")
    port = free_port()
    (tmp / "run").mkdir()  # reco serve makes its metrics directory here (TMPDIR)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RECO_", "PROMETHEUS_"))},
        "RECO_REDIS_URL": trained_repo.redis.url,
        "RECO_FEAST_PROJECT": trained_repo.feast_project,
        "RECO_FEATURE_REPO": str(trained_repo.feature_repo),
        "RECO_ARTIFACTS_DIR": str(trained_repo.artifacts_dir),
        "RECO_EVENTS_DIR": str(tmp / "events"),
        "RECO_EXPOSURES_DIR": str(tmp / "exposures"),
        "RECO_RATE_LIMIT_PER_SECOND": str(RATE),
        "RECO_RATE_LIMIT_BURST": str(BURST),
        "RECO_LOG_LEVEL": "WARNING",
        "TMPDIR": str(tmp / "run"),
        "OPENBLAS_NUM_THREADS": "1",
    }
    reco = Path(sys.executable).with_name("reco")
    proc = subprocess.Popen(
        [str(reco), "serve", "--workers", "2", "--port", str(port)], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "reco serve exited"
            try:
                if _all_workers_loaded(httpx.get(f"{base}/metrics", timeout=1).text, 2):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the workers did not become ready"
            time.sleep(0.2)
        yield base, tmp
    finally:
        proc.terminate()
        proc.wait(60)
    assert not list((tmp / "run").glob("reco-metrics-*"))  # removed at exit


def _all_workers_loaded(text: str, workers: int) -> bool:
    """Each of ``workers`` live workers has its model (reco_model_info: one series per worker
    pid; reco_model_loaded: the minimum over the live workers)."""
    pids = set(re.findall(r'^reco_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.M))
    loaded = re.search(r"^reco_model_loaded (\S+)$", text, re.M)
    return len(pids) == workers and loaded is not None and float(loaded.group(1)) == 1.0


def _per_worker_requests(directory: Path) -> dict[int, float]:
    """reco_http_requests_total per worker pid, read from each worker's own counter file."""
    out: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(re.search(r"_(\d+)\.db$", path.name).group(1))  # type: ignore[union-attr]
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[0] == "reco_http_requests":
                out[pid] = out.get(pid, 0.0) + value
    return out


def _metric_total(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def test_rate_limit_and_metrics_hold_across_two_workers(two_workers) -> None:  # type: ignore[no-untyped-def]
    base, tmp = two_workers
    before = _metric_total(httpx.get(f"{base}/metrics").text, "reco_http_requests_total")

    def one(n: int) -> int:  # a fresh connection each: the kernel spreads them over workers
        return httpx.get(
            f"{base}/recommendations", params={"user_id": "a_user0", "k": 3}, timeout=10
        ).status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(REQUESTS)))
    elapsed = time.monotonic() - t0
    allowed = codes.count(200)
    assert set(codes) <= {200, 429}, codes
    # one bucket for both workers: the burst plus what refilled meanwhile (not twice that)
    assert BURST <= allowed <= BURST + RATE * elapsed + 1, (allowed, elapsed)

    (metrics_dir,) = (tmp / "run").glob("reco-metrics-*")
    per_worker = _per_worker_requests(metrics_dir)
    assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker  # both served
    after = _metric_total(httpx.get(f"{base}/metrics").text, "reco_http_requests_total")
    assert after - before == REQUESTS + 1  # every worker's requests (+ the first scrape)
    limited = _metric_total(httpx.get(f"{base}/metrics").text, "reco_rate_limited_total")
    assert limited == REQUESTS - allowed

    time.sleep(0.5)  # the exposure sinks flush every 50 ms
    segments = list((tmp / "exposures").glob("exposures-*.jsonl"))
    lines = [line for p in segments for line in p.read_bytes().splitlines()]
    assert len(lines) == allowed  # one exposure per served response, each a whole line
    assert all(orjson.loads(line)["user_id"] == "a_user0" for line in lines)
    pids = {p.name.split("-")[2] for p in segments}
    assert len(pids) == len(segments)  # one segment per worker process
