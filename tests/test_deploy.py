"""Deployment files: compose must validate, the image must be pinned, and every service's
command line must work here, outside Docker (there is no Docker engine on this machine)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support.repo import ROOT


def test_docker_compose_config_accepts_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip(
            "docker-compose is not installed (CI installs it: apt-get install docker-compose)"
        )
    proc = subprocess.run([exe, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_prometheus_scrapes_the_api_and_grafana_queries_real_metrics() -> None:
    """Every metric the dashboard queries is one the API exports (names from api/metrics.py)."""
    import json
    import re

    from prometheus_client import generate_latest

    from api.telemetry import Metrics

    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["api:8000"]
    exported = set(
        re.findall(r"^# TYPE (\w+) ", generate_latest(Metrics().registry).decode(), re.M)
    )
    exprs = []
    for name, least in (("reco-serving.json", 12), ("reco-lifecycle.json", 13)):
        dash = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / name).read_text())
        found = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        assert len(found) >= least, name
        exprs += found
    for expr in exprs:
        for name in re.findall(r"\b(reco_\w+)", expr):
            base = re.sub(r"_(bucket|total|count|sum)$", "", name)
            assert {name, base} & exported, f"{name} in the dashboard is not exported"


def test_dockerfile_is_multi_stage_and_installs_only_hash_pinned_dependencies() -> None:
    import re

    import tomllib

    docker = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", docker, re.M)
    assert len(stages) == 2 and stages[0][1] == "build"
    assert all(re.search(r":\d+\.\d+\.\d+", image) for image, _ in stages)  # pinned bases
    assert "--require-hashes" in docker and "COPY --from=build /opt/venv" in docker
    lock = (ROOT / "deploy" / "requirements.lock").read_text()
    assert "file://" not in lock  # nothing machine-specific
    pinned = {
        m.group(1).lower().replace("_", "-")
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==[^\s]+ \\\n\s+--hash=sha256:", lock, re.M)
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["ray"]
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower().replace("_", "-")  # type: ignore[union-attr]
        assert name in pinned, f"{name} is not pinned with hashes in deploy/requirements.lock"


def test_the_api_service_serves_with_one_worker_per_core() -> None:
    """`reco serve` with RECO_WORKERS=0 (one worker process per core) unless overridden."""
    from recommender.config import Settings

    api = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert api["command"] == ["reco", "serve"]
    workers = api["environment"]["RECO_WORKERS"]
    assert workers == "${RECO_WORKERS:-0}"
    assert Settings(workers=int(workers.split(":-")[1].rstrip("}"))).api.workers == 0
    assert api["environment"]["RECO_REDIS_URL"] == "redis://redis:6379/0"  # the shared anchor
