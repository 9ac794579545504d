"""Kill, rerun and concurrency: real `reco nightly` processes, real signals, real Redis/Feast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.config import Settings
from recommender.contract.published import LiveLists, live_lists
from recommender.data.synthetic import synthetic_catalog
from recommender.data.tables import build_tables, write_tables
from recommender.pipeline.nightly import run_nightly
from tests.support.repo import feast_apply, make_settings, teardown_repo

pytestmark = pytest.mark.integration
CHUNK_USERS = 20


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Settings]:
    """3,000 synthetic users, trained, and one nightly run published (slot a)."""
    settings = make_settings(
        tmp_path_factory.mktemp("safety"), redis_url, als_factors=8, top_n=20, lock_seconds=3
    )
    write_tables(build_tables(*synthetic_catalog(3000, 400, 40_000, seed=3)), settings.data_dir)
    feast_apply(settings)
    run_nightly(settings, retrain=True)
    yield settings
    teardown_repo(settings)


def _env(settings: Settings, **extra: object) -> dict[str, str]:
    values = {
        "REDIS_URL": settings.redis.url,
        "FEAST_PROJECT": settings.feast_project,
        "FEATURE_REPO": str(settings.feature_repo),
        "ARTIFACTS_DIR": str(settings.artifacts_dir),
        "TOP_N": settings.nightly.top_n,
        "CHUNK_USERS": CHUNK_USERS,
        "LOCK_SECONDS": settings.nightly.lock_seconds,
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECO_")}
    env.update({f"RECO_{k}": str(v) for k, v in values.items()})
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def _start(settings: Settings, *args: str, **extra: object) -> subprocess.Popen[str]:
    reco = Path(sys.executable).with_name("reco")
    return subprocess.Popen(
        [str(reco), "nightly", *args],
        env=_env(settings, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _manifests(settings: Settings) -> list[dict]:  # type: ignore[type-arg]
    # not glob("*"): pathlib matches the writer's hidden temporary files, read half-written
    runs = sorted((settings.artifacts_dir / "runs").glob("[!.]*.json"))
    return [json.loads(p.read_text()) for p in runs]


def _wait_for_chunks(settings: Settings, proc: subprocess.Popen[str], known: set[str], n: int):  # type: ignore[no-untyped-def]
    """The new run's manifest once it has finished at least ``n`` chunks (polled)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for m in _manifests(settings):
            if m["run_id"] not in known and len(m.get("chunks_done", [])) >= n:
                return m
        time.sleep(0.005)
    raise AssertionError("the run never got going")


def _served(settings: Settings, users: list[str]) -> dict[str, tuple[str, list[str]]]:
    with TestClient(create_app(settings)) as client:
        out = {}
        for user in users:
            body = client.get("/recommendations", params={"user_id": user, "k": 10}).json()
            assert body["source"] == "precomputed", body
            out[user] = (body["run_id"], [i["item_id"] for i in body["items"]])
        assert client.get("/ready").json()["lists_run_id"] == body["run_id"]
        return out


def test_a_killed_run_leaves_the_old_version_served_and_a_rerun_resumes(
    published: Settings,
) -> None:
    before = live_lists(published)
    assert before is not None
    users = ["u0", "u1500", "u2999"]
    served_before = _served(published, users)
    assert {run for run, _ in served_before.values()} == {before.run_id}
    known = {m["run_id"] for m in _manifests(published)}

    proc = _start(published, LOCK_SECONDS=20)
    partial = _wait_for_chunks(published, proc, known, 3)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup of any kind
    proc.wait(timeout=30)
    # the dead run's lock stays until it expires: another run refuses to start meanwhile
    refused = _start(published)
    killed = next(m for m in _manifests(published) if m["run_id"] == partial["run_id"])
    total = -(-3000 // CHUNK_USERS)
    assert killed["status"] == "running" and 3 <= len(killed["chunks_done"]) < total

    assert live_lists(published) == before  # nothing switched
    assert _served(published, users) == served_before  # the old lists, unchanged

    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "holds the nightly lock" in err, err

    # a rerun that waits for the lock resumes the killed run and publishes it
    rerun = _start(published, LOCK_WAIT_SECONDS=60)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["run_id"] == killed["run_id"] and result["status"] == "succeeded"
    final = next(m for m in _manifests(published) if m["run_id"] == killed["run_id"])
    assert final["resumed"] == 1 and sorted(final["chunks_done"]) == list(range(total))
    assert final["users_written"] == 3000
    live = live_lists(published)
    assert live is not None and live.run_id == killed["run_id"] and live.slot != before.slot
    assert {run for run, _ in _served(published, users).values()} == {killed["run_id"]}


def test_sigterm_interrupts_cleanly_and_releases_the_lock(published: Settings) -> None:
    before = live_lists(published)
    known = {m["run_id"] for m in _manifests(published)}
    proc = _start(published)
    partial = _wait_for_chunks(published, proc, known, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    stopped = next(m for m in _manifests(published) if m["run_id"] == partial["run_id"])
    assert stopped["status"] == "interrupted" and stopped["finished_at"]
    # its partial lists stay in its (unserved) slot for the resume, and the manifest says so
    assert f"slot {stopped['slot']} holds this run's partial lists" in stopped["note"]
    assert live_lists(published) == before
    # the lock was released on the way out: the next run starts at once and resumes
    rerun = _start(published)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["run_id"] == partial["run_id"]


def test_two_concurrent_runs_cannot_both_publish(published: Settings) -> None:
    before = live_lists(published)
    procs = [_start(published, "--no-resume") for _ in range(2)]
    results = [(p.wait(timeout=300), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, (_, err) in results if code == 2)
    assert "holds the nightly lock" in loser_err
    winner = json.loads(next(out for code, (out, _) in results if code == 0).splitlines()[-1])
    live = live_lists(published)
    assert live is not None and before is not None
    assert live.run_id == winner["run_id"] and live.slot != before.slot


def test_a_stalled_run_whose_lock_expired_cannot_publish(published: Settings) -> None:
    import redis

    from recommender.batch.publication import RunLock, publish
    from recommender.contract.published import read_live
    from recommender.errors import LockLost, RunLocked

    client = redis.Redis.from_url(published.redis.url)
    project = published.feast_project
    before = read_live(client, project)
    stalled = RunLock(client, project, "stalled", seconds=1)
    stalled.acquire()
    stalled._stop.set()  # the heartbeat stops, as in a process frozen by the OS
    token = stalled.token
    with pytest.raises(RunLocked):
        RunLock(client, project, "impatient", seconds=5).acquire()
    time.sleep(1.5)
    fresh = RunLock(client, project, "fresh", seconds=5)
    fresh.acquire()
    try:
        lists = LiveLists("b", "stalled", "v", "now", 1)
        with pytest.raises(LockLost):
            publish(client, project, token, lists)
        assert read_live(client, project) == before
    finally:
        fresh.release()


def test_a_night_over_its_memory_budget_fails_clearly_and_publishes_nothing(
    published: Settings,
) -> None:
    """Issue 14: a batch size whose scores would not fit stops with a message naming the
    setting (exit 2, the CLI's domain-error code), before scoring; the live lists stay."""
    before = live_lists(published)
    proc = _start(published, "--no-resume", BATCH_SIZE=10**7, MEMORY_BUDGET_MB=2048)
    code, (out, err) = proc.wait(timeout=300), proc.communicate()
    assert code == 2, (out, err)
    assert "lower RECO_BATCH_SIZE or RECO_CHUNK_USERS" in err
    assert live_lists(published) == before
    failed = [m for m in _manifests(published) if m["status"] == "failed"]
    assert failed and "MemoryBudgetExceeded" in failed[-1]["error"]
