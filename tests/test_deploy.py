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
    assert set(spec["services"]) == {"redis", "api", "nightly"}
    assert spec["services"]["nightly"]["command"][-1] == "scripts/pipeline.sh"
    assert (ROOT / "scripts" / "pipeline.sh").exists()
    # `reco serve` is the api command; the console script must exist in this environment
    assert spec["services"]["api"]["command"][:2] == ["reco", "serve"]
    reco = Path(sys.executable).with_name("reco")
    assert reco.exists(), "the reco console script is not installed"
    proc = subprocess.run([str(reco), "serve", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--host" in proc.stdout
