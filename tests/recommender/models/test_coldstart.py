import numpy as np
import pandas as pd

from recommender.models.coldstart import ProfileModel, profile_tokens


def test_tokens() -> None:
    assert profile_tokens({"age": 30, "gender": "F", "occupation": " Writer "}) == [
        "age=25-34",
        "gender=f",
        "occupation=writer",
    ]
    assert profile_tokens({"age": None, "gender": ""}) == []


def test_profile_model_recovers_group_vectors(rng: np.random.Generator) -> None:
    centers = {"M": np.array([1.0, 0.0]), "F": np.array([0.0, 1.0])}
    genders = rng.choice(["M", "F"], size=200)
    vectors = np.stack([centers[g] + rng.normal(scale=0.1, size=2) for g in genders])
    model = ProfileModel.fit(pd.DataFrame({"gender": genders}), vectors, l2=1.0)
    assert np.allclose(model.vector({"gender": "F"}), centers["F"], atol=0.1)
    assert np.allclose(model.vector({"gender": "M"}), centers["M"], atol=0.1)
    # nothing known -> the mean user; unknown token ignored
    assert np.allclose(model.vector({"gender": "X"}), vectors.mean(axis=0), atol=0.1)
    assert model.known_tokens({"gender": "X", "occupation": "nobody"}) == []
