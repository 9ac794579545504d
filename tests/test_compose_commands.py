"""Run the command lines of docker-compose.yml's services outside Docker, as the containers
would: setup (the main job), api (+ its healthcheck), nightly (`reco schedule`), the Feast
feature server and redis (persistence across a restart). Real Redis, real Feast, ML-100K."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from recommender.config import Settings
from tests.support.repo import ROOT, free_port, make_settings, teardown_repo

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
BIN = Path(sys.executable).parent


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the host environment."""
    return re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), str(value)
    )


def service_env(service: str, settings: Settings, **extra: object) -> dict[str, str]:
    """The service's environment from the compose file, with the container paths and the
    Redis address replaced by this test's (and the virtualenv first on PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECO_")}
    declared = COMPOSE["services"][service].get("environment", {})
    env.update({k: _interpolate(v) for k, v in declared.items()})
    env.update(
        RECO_REDIS_URL=settings.redis.url,
        RECO_FEAST_PROJECT=settings.feast_project,
        RECO_FEATURE_REPO=str(settings.feature_repo),
        RECO_ARTIFACTS_DIR=str(settings.artifacts_dir),
        RECO_CACHE_DIR=str(ROOT / ".cache"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        OPENBLAS_NUM_THREADS="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command(service: str) -> list[str]:
    return [str(c) for c in COMPOSE["services"][service]["command"]]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    """The setup service's command: fetch ML-100K, feast apply, train, first nightly run."""
    settings = make_settings(tmp_path_factory.mktemp("compose"), redis_url, als_factors=32)
    env = service_env("setup", settings, RECO_ALS_FACTORS=32)
    proc = subprocess.run(command("setup"), cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    yield settings
    teardown_repo(settings)


def _wait(check, seconds: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"gave up after {seconds}s")


def test_api_command_serves_and_its_healthcheck_passes(deployed: Settings) -> None:
    port = free_port()
    env = service_env("api", deployed, RECO_PORT=port)
    api = subprocess.Popen(command("api"), cwd=ROOT, env=env)
    try:
        probe = COMPOSE["services"]["api"]["healthcheck"]["test"]
        assert probe[0] == "CMD"

        def healthy() -> bool:
            assert api.poll() is None, "the api exited"
            return subprocess.run(probe[1:], env=env, capture_output=True).returncode == 0

        _wait(healthy)
        body = httpx.get(
            f"http://127.0.0.1:{port}/recommendations", params={"user_id": "196", "k": 5}
        ).json()
        assert body["source"] == "precomputed" and len(body["items"]) == 5
    finally:
        api.terminate()
        api.wait(timeout=30)
    # and the healthcheck fails when nothing answers
    assert subprocess.run(probe[1:], env=env, capture_output=True).returncode == 1


def test_nightly_command_runs_the_job_on_its_cron(deployed: Settings) -> None:
    runs = deployed.artifacts_dir / "runs"
    before = set(runs.glob("*.json"))
    env = service_env("nightly", deployed, RECO_NIGHTLY_CRON="* * * * * */2")  # every 2 s
    sched = subprocess.Popen(command("nightly"), cwd=ROOT, env=env)
    try:

        def succeeded() -> list[dict]:  # type: ignore[type-arg]
            assert sched.poll() is None, "the scheduler exited"
            new = [json.loads(p.read_text()) for p in set(runs.glob("*.json")) - before]
            return [m for m in new if m.get("status") == "succeeded"]

        assert _wait(succeeded, 180)
    finally:
        sched.send_signal(signal.SIGTERM)
        code = sched.wait(timeout=90)
    assert code == 0  # docker stop: the scheduler stops cleanly


def test_feature_server_command_serves_online_features(deployed: Settings) -> None:
    port = free_port()
    env = service_env("feature-server", deployed, RECO_FEATURE_SERVER_PORT=port)
    server = subprocess.Popen(command("feature-server"), cwd=ROOT, env=env)
    try:
        payload = {"feature_service": "serving_realtime_v1", "entities": {"user_id": ["196"]}}

        def answer() -> dict | None:  # type: ignore[type-arg]
            assert server.poll() is None, "feast serve exited"
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/get-online-features", json=payload)
            except httpx.TransportError:
                return None
            return r.json() if r.status_code == 200 else None

        body = _wait(answer)
        names = body["metadata"]["feature_names"]
        ages = body["results"][names.index("age")]["values"]
        assert ages == [49]  # ML-100K user 196 is 49
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_redis_command_persists_across_a_restart(tmp_path: Path) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    args = command("redis")
    assert args[0] == "redis-server" and "--appendonly" in args
    port = free_port()
    start = [exe, *args[1:], "--port", str(port), "--dir", str(tmp_path), "--bind", "127.0.0.1"]
    for attempt in range(2):
        proc = subprocess.Popen(start, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        try:
            _wait(lambda c=client: _pings(c), 20)
            if attempt == 0:
                client.set("reco:persisted", "yes")
            else:
                assert client.get("reco:persisted") == b"yes"
            client.shutdown()  # a clean stop, as `docker compose down`
        except redis.ConnectionError:
            pass
        proc.wait(timeout=20)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
