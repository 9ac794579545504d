"""The write benchmark's redis-benchmark reference cleans up after itself, and only after
itself: other projects' keys survive in every database, none of its own keys stay behind.

Runs against a redis-server of the test's own on a free port, and calls the benchmark in a
subprocess (the test suite never imports ``bench/``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.repo import ROOT, free_port

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-benchmark")),
    reason="redis-server / redis-benchmark are not installed",
)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_redis_benchmark_reference_deletes_exactly_its_own_keys(own_redis: int) -> None:
    db0, db15 = redis.Redis(port=own_redis, db=0), redis.Redis(port=own_redis, db=15)
    # another project's data, including a key named like redis-benchmark's own `key:<n>`
    theirs0 = {
        b"reco:someone:lists:live": b"{}",
        b"key:000000000007": b"not the benchmark's",
        b"user:1": b"x",
    }
    theirs15 = {b"key:000000000001": b"another app's db 15"}
    db0.mset(theirs0)
    db15.mset(theirs15)
    n = 2000
    url = f"redis://127.0.0.1:{own_redis}/0"
    code = f"from bench.write_bench import redis_benchmark as rb; print(rb({url!r}, 64, {n}))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rate = float(proc.stdout.strip().splitlines()[-1])
    assert rate > 0
    assert db0.info("commandstats")["cmdstat_set"]["calls"] >= n  # it really wrote its keys
    assert {k: db0.get(k) for k in theirs0} == theirs0
    assert {k: db15.get(k) for k in theirs15} == theirs15
    assert db0.dbsize() == len(theirs0) and db15.dbsize() == len(theirs15)  # none of its own
    for db in range(16):
        if db not in (0, 15):
            assert redis.Redis(port=own_redis, db=db).dbsize() == 0
