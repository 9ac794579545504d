"""Versioned artifacts: round trip, checksums, atomic pointer, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.vocab import Vocab
from recommender.errors import ArtifactNotFound, CorruptArtifact
from recommender.models import ALSModel, PopularityModel
from recommender.models.coldstart import ProfileModel
from recommender.training.artifacts import (
    ModelBundle,
    latest_version,
    load_bundle,
    models_dir,
    publish_version,
    save_bundle,
)
from recommender.training.index import ItemIndex
from recommender.training.manifest import ModelManifest
from tests.support.matrices import checkerboard


def make_bundle(version: str) -> ModelBundle:
    x = checkerboard()
    als = ALSModel(factors=8, iterations=5).fit(x)
    users = Vocab.from_ids([f"u{i}" for i in range(x.shape[0])])
    items = Vocab.from_ids([f"i{i}" for i in range(x.shape[1])])
    profiles = pd.DataFrame({"gender": ["M", "F"] * (x.shape[0] // 2)})
    return ModelBundle(
        version=version,
        als=als,
        popularity=PopularityModel().fit(x),
        profile=ProfileModel.fit(profiles, als.user_factors),
        index=ItemIndex.build(als.item_factors),
        users=users,
        items=items,
        titles=pd.Series({i: f"title {i}" for i in items.ids}),
        user_items=x,
        manifest=ModelManifest(params=als.params()),
    )


def test_round_trip_and_pointer(tmp_path: Path) -> None:
    bundle = make_bundle("v1")
    save_bundle(bundle, tmp_path)
    assert latest_version(tmp_path) == "v1"
    loaded = load_bundle(tmp_path)
    rows = np.arange(5)
    a = bundle.als.recommend(rows, bundle.user_items[rows], 5)
    b = loaded.als.recommend(rows, loaded.user_items[rows], 5)
    assert (a[0] == b[0]).all()
    assert loaded.titles["i3"] == "title i3" and loaded.index.size == 40
    assert set(loaded.manifest.files) >= {"als.npz", "items.faiss", "user_items.npz"}
    assert not list(models_dir(tmp_path).glob(".*tmp*"))


def test_unpublished_version_does_not_move_the_pointer(tmp_path: Path) -> None:
    save_bundle(make_bundle("v1"), tmp_path)
    save_bundle(make_bundle("v2"), tmp_path, publish=False)
    assert latest_version(tmp_path) == "v1"
    publish_version(tmp_path, "v2")
    assert load_bundle(tmp_path).version == "v2"
    with pytest.raises(ArtifactNotFound, match="v9 does not exist"):
        publish_version(tmp_path, "v9")


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="run `reco train` first"):
        load_bundle(tmp_path)


def test_tampered_or_missing_file_is_detected(tmp_path: Path) -> None:
    save_bundle(make_bundle("v1"), tmp_path)
    faiss_file = models_dir(tmp_path) / "v1" / "items.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-8])
    with pytest.raises(CorruptArtifact, match="does not match its checksum"):
        load_bundle(tmp_path)
    faiss_file.unlink()
    with pytest.raises(CorruptArtifact, match="missing"):
        load_bundle(tmp_path)
