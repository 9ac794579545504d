"""Deployment files: compose must validate, and its service command lines must exist here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def test_docker_compose_config_accepts_the_file() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip(
            "docker-compose is not installed (CI installs it: apt-get install docker-compose)"
        )
    proc = subprocess.run([exe, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_compose_services_run_commands_that_exist() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(spec["services"]) == {"redis", "api", "nightly", "prometheus", "grafana"}
    assert spec["services"]["nightly"]["command"][-1] == "scripts/pipeline.sh"
    assert (ROOT / "scripts" / "pipeline.sh").exists()
    # `reco serve` is the api command; the console script must exist in this environment
    assert spec["services"]["api"]["command"][:2] == ["reco", "serve"]
    reco = Path(sys.executable).with_name("reco")
    assert reco.exists(), "the reco console script is not installed"
    proc = subprocess.run([str(reco), "serve", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--host" in proc.stdout


def test_prometheus_scrapes_the_api_and_grafana_queries_real_metrics() -> None:
    """Every metric the dashboard queries is one the API exports (names from api/metrics.py)."""
    import json
    import re

    from prometheus_client import generate_latest

    from api.metrics import Metrics

    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["api:8000"]
    exported = set(
        re.findall(r"^# TYPE (\w+) ", generate_latest(Metrics().registry).decode(), re.M)
    )
    dash = json.loads(
        (ROOT / "deploy" / "grafana" / "dashboards" / "reco-serving.json").read_text()
    )
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        for name in re.findall(r"\b(reco_\w+)", expr):
            base = re.sub(r"_(bucket|total|count|sum)$", "", name)
            assert {name, base} & exported, f"{name} in the dashboard is not exported"
