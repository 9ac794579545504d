"""A real Feast repository per test: a copy of ``feature_repo/`` with its own project name
(``t<run>_<n>``), so runs never clobber each other or a running demo; the real `feast` CLI;
free ports for the servers a test starts."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from recommender.config import Settings
from recommender.featurestore.repo import feast_cli_env, teardown_project

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("RECO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN = uuid.uuid4().hex[:8]
_counter = iter(range(1_000_000))


def make_settings(tmp: Path, redis_url: str, **overrides: object) -> Settings:
    """A Feast repo copy in ``tmp`` with a unique project name."""
    repo = tmp / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "definitions.py", ".feastignore"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    values: dict[str, object] = {
        "redis_url": redis_url,
        "feast_project": f"t{RUN}_{next(_counter)}",
        "feature_repo": repo,
        "artifacts_dir": tmp / "artifacts",
        "cache_dir": ROOT / ".cache",
        "als_factors": 2,  # two taste groups: the synthetic data has rank 2
        "als_iterations": 15,
        "als_regularization": 0.1,
        "top_n": 20,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def run_feast(
    settings: Settings, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    """Run the real `feast` CLI in the repo, exactly as a data engineer would (``env``: more
    variables for ``feature_store.yaml``); return stdout."""
    full_env = {**os.environ, **feast_cli_env(settings, env)}
    feast = Path(sys.executable).with_name("feast")
    proc = subprocess.run(
        [str(feast), *args],
        cwd=settings.feature_repo,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def free_port() -> int:
    """A TCP port nobody listens on right now (for servers a test starts)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all held at once while choosing, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def feast_apply(settings: Settings) -> None:
    run_feast(settings, "apply")


def without_batch_engine(yaml_text: str) -> str:
    """``feature_store.yaml`` text as Feast's defaults run the repository: without its
    ``batch_engine`` block (Feast's local engine) and on Feast's file offline store (the
    reference the streaming engine is compared with; Feast's local engine cannot read the
    lists' folder source through the DuckDB store)."""
    text = re.sub(r"(?m)^(#.*\n)*batch_engine:\n(  .*\n)*", "", yaml_text)
    return re.sub(r"(?m)^(#.*\n)*offline_store:\n(  .*\n)*", "offline_store:\n  type: file\n", text)


def teardown_repo(settings: Settings) -> None:
    """Remove exactly this test project's Redis data (the project name is unique to the run)."""
    teardown_project(settings)
