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


def test_fit_per_distinct_profile_equals_ridge_over_every_user(rng: np.random.Generator) -> None:
    """The normal equations summed per distinct profile are the per-user ridge solution."""
    n = 500
    profiles = pd.DataFrame(
        {
            "age": rng.choice([19.0, 30.0, 47.0, np.nan], n),
            "gender": rng.choice(["F", "M", None], n),
            "occupation": rng.choice(["writer", "artist", " Writer "], n),
        }
    )
    vectors = rng.normal(size=(n, 6)).astype(np.float32)
    model = ProfileModel.fit(profiles, vectors, l2=3.0)

    rows = [profile_tokens(r) for r in profiles.to_dict("records")]
    index = {t: i for i, t in enumerate(model.tokens.tolist())}
    x = np.zeros((n, 1 + len(index)))
    x[:, 0] = 1.0
    for r, tokens in enumerate(rows):
        for t in tokens:
            x[r, 1 + index[t]] = 1.0
    gram = x.T @ x + 3.0 * np.eye(x.shape[1])
    gram[0, 0] -= 3.0
    want = np.linalg.solve(gram, x.T @ vectors.astype(np.float64))
    assert sorted(model.tokens.tolist()) == sorted({t for r in rows for t in r})
    np.testing.assert_allclose(model.weights, want, rtol=1e-4, atol=1e-5)
