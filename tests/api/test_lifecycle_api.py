"""The model lifecycle through a real uvicorn process: hot swap under load (promote, then roll
back, zero failed requests), experiments (sticky variants, exposures, attribution, canary
ramp), shadow runs, and the operator dashboard in headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from recommender.config import Settings
from recommender.data.tables import build_tables, write_tables
from recommender.events.log import read_records
from recommender.lifecycle.experiment_ops import report, set_shadow, start, stop
from recommender.lifecycle.experiments import Variant
from recommender.pipeline.nightly import run_nightly
from recommender.pipeline.release import promote, rollback
from recommender.pipeline.train import train
from tests.support.repo import feast_apply, free_port, make_settings, teardown_repo
from tests.support.server import serve_api
from tests.support.synthetic import synthetic_tables

pytestmark = pytest.mark.integration
USERS = [f"{g}_user{i}" for g in "ab" for i in range(30)]


def _env(settings: Settings) -> dict[str, str]:
    return {
        "RECO_REDIS_URL": settings.redis.url,
        "RECO_FEAST_PROJECT": settings.feast_project,
        "RECO_FEATURE_REPO": str(settings.feature_repo),
        "RECO_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "RECO_CATALOG_POLL_SECONDS": "0.2",
    }


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[Settings, str, str, str]]:
    """A repo with production v1 and a candidate v2, and a uvicorn serving it."""
    settings = make_settings(
        tmp_path_factory.mktemp("lifecycle_api"), redis_url, catalog_poll_seconds=0.2
    )
    write_tables(build_tables(*synthetic_tables(np.random.default_rng(7))), settings.data_dir)
    feast_apply(settings)
    v1 = run_nightly(settings, retrain=True).model_version
    v2 = train(settings, publish=False).version
    try:
        with serve_api(_env(settings), free_port()) as base:
            yield settings, base, v1, v2
    finally:
        teardown_repo(settings)


def _wait(predicate: Any, seconds: float = 15.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the API to follow")


def _metric(base: str, line_start: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(line_start))


def test_hot_swap_under_load_fails_no_request(served: tuple[Settings, str, str, str]) -> None:
    settings, base, v1, v2 = served
    log: list[tuple[float, int, str]] = []
    halt = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            n = 0
            while not halt.is_set():
                n += 1
                try:
                    r = c.get(
                        "/recommendations", params={"user_id": USERS[(n * 7 + worker) % 60], "k": 5}
                    )
                    log.append((time.time(), r.status_code, r.json().get("model_version", "")))
                except httpx.TransportError as exc:
                    log.append((time.time(), 599, repr(exc)))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        promote(settings, v2)
        _wait(lambda: log and log[-1][2] == v2)
        time.sleep(0.5)
        rollback(settings)
        _wait(lambda: log and log[-1][2] == v1)
        time.sleep(0.5)
    finally:
        halt.set()
        for t in threads:
            t.join()
    assert len(log) > 100
    assert [e for e in log if e[1] != 200] == [], "no failed request during the swaps"
    versions = [v for _, _, v in log]
    first_v2, last_v2 = versions.index(v2), len(versions) - 1 - versions[::-1].index(v2)
    assert set(versions[:first_v2]) == {v1} and set(versions[last_v2 + 1 :]) == {v1}
    assert _metric(base, 'reco_model_swaps_total{outcome="ok"}') >= 2


def test_experiment_assignment_exposures_and_attribution(
    served: tuple[Settings, str, str, str], tmp_path: Path
) -> None:
    settings, base, v1, v2 = served
    exp = start(settings, "als_v2", [Variant("control", 50), Variant("candidate", 50, v2)])
    _wait(lambda: httpx.get(f"{base}/admin/overview").json()["experiment"] is not None)
    bodies = {}
    with httpx.Client(base_url=base) as c:
        for user in USERS:
            first = c.get("/recommendations", params={"user_id": user, "k": 5}).json()
            again = c.get("/recommendations", params={"user_id": user, "k": 5}).json()
            assert first["variant"] == again["variant"] == exp.assign(user).name  # sticky
            assert first["recommendation_id"] != again["recommendation_id"]
            if first["variant"] == "candidate":
                assert (first["model_version"], first["source"]) == (v2, "realtime")
            else:
                assert (first["model_version"], first["source"]) == (v1, "precomputed")
            bodies[user] = first
        # clicks answering each response; candidate users also buy
        now = datetime.now(timezone.utc)
        events = [
            {
                "user_id": u,
                "item_id": b["items"][0]["item_id"],
                "event_type": "click",
                "recommendation_id": b["recommendation_id"],
            }
            for u, b in bodies.items()
        ]
        events += [
            {
                "user_id": u,
                "item_id": b["items"][1]["item_id"],
                "event_type": "purchase",
                "recommendation_id": b["recommendation_id"],
            }
            for u, b in bodies.items()
            if b["variant"] == "candidate"
        ]
        u0, b0 = "a_user0", bodies["a_user0"]
        events.append(
            {
                "user_id": u0,
                "item_id": "a1",
                "event_type": "click",
                "recommendation_id": "never-served",
            }
        )
        late = (now + timedelta(seconds=200)).isoformat()
        events.append(
            {
                "user_id": u0,
                "item_id": b0["items"][0]["item_id"],
                "event_type": "click",
                "recommendation_id": b0["recommendation_id"],
                "timestamp": late,
            }
        )
        assert c.post("/events/batch", json={"events": events}).status_code == 202
    time.sleep(0.3)  # exposure group commit
    exposures = [
        r
        for r in read_records(settings.exposure_log_dir, "exposures")
        if r["experiment"] == "als_v2"
    ]
    assert {r["recommendation_id"] for r in exposures} >= {
        b["recommendation_id"] for b in bodies.values()
    }

    short = settings.replace(attribution_window_hours=0.01)  # 36 s: `late` expired
    result = report(short, "als_v2")
    table = {row["variant"]: row for row in result["table"]}
    n_candidate = sum(b["variant"] == "candidate" for b in bodies.values())
    assert (
        table["candidate"]["users"] == n_candidate and table["control"]["users"] == 60 - n_candidate
    )
    assert table["candidate"]["exposures"] == 2 * n_candidate
    assert (
        table["candidate"]["users_clicked"] == n_candidate
        and table["control"]["users_clicked"] == 60 - n_candidate
    )
    assert (
        table["candidate"]["users_converted"] == n_candidate
        and table["control"]["users_converted"] == 0
    )
    assert result["attributed_events"] == 60 + n_candidate
    assert result["unattributed"] == {"unknown": 1, "expired": 1}

    runner, env = CliRunner(), _env(settings)
    out = runner.invoke(
        app, ["experiments", "report", "als_v2", "--out", str(tmp_path / "rep")], env=env
    )
    assert out.exit_code == 0, out.output
    assert "| candidate" in out.output and (tmp_path / "rep" / "ctr.png").stat().st_size > 1000

    # canary: stop, then 5% -> 25% -> back to 5%, followed by the API
    stop(settings, "als_v2")
    assert (
        runner.invoke(app, ["experiments", "canary", "can1", "--candidate", v2], env=env).exit_code
        == 0
    )
    for flag, weight in (("--next", 25.0), ("--back", 5.0)):
        done = runner.invoke(app, ["experiments", "ramp", "can1", flag], env=env)
        assert done.exit_code == 0, done.output
        _wait(
            lambda w=weight: (
                _metric(
                    base,
                    f'reco_experiment_weight{{experiment="can1",model_version="{v2}",variant="canary"}}',
                )
                == w
            )
        )
    stop(settings, "can1")
    _wait(lambda: httpx.get(f"{base}/admin/overview").json()["experiment"] is None)


def test_shadow_runs_off_the_request_path(served: tuple[Settings, str, str, str]) -> None:
    settings, base, v1, v2 = served
    set_shadow(settings, v2, 1.0)
    _wait(lambda: httpx.get(f"{base}/admin/overview").json()["shadow"] is not None)
    with httpx.Client(base_url=base) as c:
        for user in USERS[:20]:
            assert c.get("/recommendations", params={"user_id": user, "k": 5}).status_code == 200
            time.sleep(0.02)
    _wait(lambda: _metric(base, 'reco_shadow_requests_total{outcome="scored"}') >= 10)
    assert _metric(base, "reco_shadow_duration_seconds_count") >= 10
    records = read_records(settings.exposure_log_dir, "shadow")
    assert records and {r["shadow_model"] for r in records} == {v2}
    assert all(0 <= r["overlap"] <= 1 and r["shadow_ms"] > 0 for r in records)
    set_shadow(settings, None, 0.1)


def test_dashboard_in_a_real_browser(
    served: tuple[Settings, str, str, str], tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    settings, base, v1, v2 = served
    from recommender.lifecycle.monitor import monitor

    monitor(settings)  # drift figures for the dashboard
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/dashboard")
        page.wait_for_function("document.querySelector('#serving-model').textContent.length > 5")
        assert page.text_content("#serving-model") == v1
        assert page.locator("#models tbody tr").count() >= 2
        assert "production" in page.text_content("#models tbody")
        # each version's replay verdict per path (the synthetic data: known users only)
        assert "none" in page.text_content("#models tbody")
        assert page.locator("#runs tbody tr").count() >= 1
        page.wait_for_function("document.querySelectorAll('#drift-features tbody tr').length > 0")
        page.fill("#user-id", "a_user0")
        page.fill("#k", "5")
        page.click("#try-form button")
        page.wait_for_selector("#try-items tbody tr")
        assert page.locator("#try-items tbody tr").count() == 5
        # the same answer as the API gives (a_user0 clicked earlier: the real-time path)
        direct = httpx.get(f"{base}/recommendations", params={"user_id": "a_user0", "k": 5})
        assert page.text_content("#try-source") == direct.json()["source"]
        assert "Action film" in page.text_content("#try-items tbody")
        assert "because you liked" in page.text_content("#try-items tbody")
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("RECO_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
