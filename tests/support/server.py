"""Start the API as a real uvicorn process and wait until ``/ready`` answers 200; used by
the benchmarks and by the tests that need a real server (load, hot swap, a browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from api.headtimeout import PROTOCOL

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve_api(env: Mapping[str, str], port: int, ready_seconds: float = 30.0) -> Iterator[str]:
    """``uvicorn --factory api.main:create_app`` with ``env`` added to the environment; yields
    the base URL. Stopped with SIGTERM at the end (killed if it takes over 30 s)."""
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-proxy-headers",
            "--http",  # as `reco serve` runs it: request heads have a time limit
            PROTOCOL,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                raise RuntimeError(f"the API on port {port} did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        api.terminate()
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:  # a slow graceful shutdown must not hang the caller
            api.kill()
            api.wait(10)
