"""The processes of the API benchmark: our app under uvicorn (1 or N workers, as `reco serve`
runs them), Feast's `feast serve` on the same repository, and a CPU hog beside them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float, body: bytes | None) -> None:
    deadline = time.time() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, data=body, method="POST" if body else "GET")
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.time() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {seconds:g} s")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def ours(env: Mapping[str, str], port: int, workers: int) -> Iterator[tuple[str, int]]:
    """``bench.app:create_bench_app`` under uvicorn with ``workers`` processes, set up as
    `reco serve` sets them up (multiprocess metrics, RECO_WORKERS); yields (URL, pid)."""
    metrics = tempfile.mkdtemp(prefix="reco-bench-metrics-")
    extra = {"RECO_WORKERS": str(workers)}
    if workers > 1:
        extra |= {"PROMETHEUS_MULTIPROC_DIR": metrics, "PROMETHEUS_MULTIPROCESS_DIR": metrics}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.app:create_bench_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--no-access-log", "--log-level", "warning", "--timeout-worker-healthcheck", "60"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**env, **extra})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/ready", proc, 180, None)
        time.sleep(3 if workers > 1 else 0)  # every worker loaded, not only the first
        yield base, proc.pid
    finally:
        _stop(proc)
        shutil.rmtree(metrics, ignore_errors=True)


@contextmanager
def feast_serve(
    repo: Path, env: Mapping[str, str], port: int, workers: int, probe: bytes
) -> Iterator[str]:
    """`feast serve` in the repository (the data engineer's feature server); ``probe``: a
    /get-online-features body that must answer 200 before measuring."""
    feast = Path(sys.executable).with_name("feast")
    cmd = [str(feast), "serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log"]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd, cwd=repo, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/get-online-features", proc, 180, probe)
        yield base
    finally:
        _stop(proc)


@contextmanager
def cpu_hog(on: bool) -> Iterator[None]:
    """``python3 -c "while True: pass"`` beside the server while ``on``."""
    if not on:
        yield
        return
    proc = subprocess.Popen(["python3", "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait(10)


def bench_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of the servers: ours without stray RECO_/PROMETHEUS_ settings."""
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECO_", "PROMETHEUS_", "FEAST_"))
    }
    return {**keep, "OPENBLAS_NUM_THREADS": "1", **extra}


def metric_sum(base: str, prefix: str) -> float:
    """The sum of a running server's ``/metrics`` samples whose line starts with ``prefix``
    (every worker's, in multiprocess mode)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix))
