"""A throw-away copy of the Feast repository for a benchmark (never touching a running demo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recommender.config import Settings

ROOT = Path(__file__).resolve().parents[1]
REPO_FILES = ("feature_store.yaml", "definitions.py", ".feastignore")


def copy_feature_repo(work: Path) -> Path:
    """``work/feature_repo`` with the project's Feast files (its ``data/`` starts empty)."""
    repo = work / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    return repo


def feast_apply(repo: Path, feast_env: dict[str, str]) -> None:
    """`feast apply` in ``repo`` with the ``${RECO_FEAST_*}`` variables of its yaml."""
    feast = Path(sys.executable).with_name("feast")
    env = {**os.environ, **feast_env}
    subprocess.run([str(feast), "apply"], cwd=repo, env=env, check=True, capture_output=True)


def fresh_settings(work: Path, project: str, **overrides: object) -> Settings:
    """Settings for a benchmark in an emptied ``work`` directory: a copy of the Feast repo,
    artifacts beside it, the project's dataset cache."""
    from recommender.config import Settings

    shutil.rmtree(work, ignore_errors=True)
    return Settings(
        feast_project=project,
        feature_repo=copy_feature_repo(work),
        artifacts_dir=work / "artifacts",
        cache_dir=(ROOT / ".cache").resolve(),
        **overrides,  # type: ignore[arg-type]
    )
