import pytest
from pydantic import ValidationError

from recommender.config import FLAT, Settings


def test_feast_connection_string_from_url() -> None:
    s = Settings(redis_url="redis://:p%40ss@cache:6380/2", feast_project="demo")
    assert s.feast_env() == {
        "RECO_FEAST_PROJECT": "demo",
        "RECO_FEAST_REDIS": "cache:6380,db=2,password=p@ss",
    }


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_TOP_N", "7")
    assert Settings().nightly.top_n == 7


@pytest.mark.parametrize("field", [{"feast_project": "bad-name"}, {"redis_url": "http://x"}])
def test_invalid_settings_are_rejected(field: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**field)


def test_sections_keep_every_variables_flat_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_CHUNK_USERS", "11")
    monkeypatch.setenv("reco_als_factors", "9")  # any case, as before
    monkeypatch.setenv("RECO_RANKER", "true")
    monkeypatch.setenv("RECO_NIGHTLY_CRON", "5 4 * * *")
    monkeypatch.setenv("RECO_REDIS_URL", "redis://cache:6380/1")
    s = Settings(top_n=5)  # a keyword beats the environment, by the same flat name
    assert (s.nightly.chunk_users, s.nightly.top_n, s.nightly.cron) == (11, 5, "5 4 * * *")
    assert (s.training.als.factors, s.training.ranker.enabled) == (9, True)
    assert s.redis.url == "redis://cache:6380/1"
    # every section field has exactly one variable, and the flat names are unique
    assert len(FLAT) == len(set(FLAT.values()))
    assert FLAT["ranker"] == ("training", "ranker", "enabled")


def test_replace_changes_by_flat_name_and_validates() -> None:
    s = Settings(als_factors=9)
    t = s.replace(als_regularization=500.0, chunk_users=3, feast_project="other")
    assert (t.training.als.regularization, t.training.als.factors) == (500.0, 9)
    assert (t.nightly.chunk_users, t.feast_project) == (3, "other")
    # explicitly set ALS fields stay marked as set (`reco train` lets them beat a tuning file)
    assert t.training.als.model_fields_set == {"factors", "regularization"}
    assert s.nightly.chunk_users == 50_000  # the original is untouched
    with pytest.raises(ValidationError):
        s.replace(chunk_users=0)
    with pytest.raises(ValueError, match="unknown settings: nope"):
        s.replace(nope=1)


def test_an_invalid_section_field_names_its_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(chunk_users=0)
    assert Settings.variable(caught.value.errors()[0]["loc"]) == "RECO_CHUNK_USERS"
    assert Settings.variable(("training", "als", "factors")) == "RECO_ALS_FACTORS"
    assert Settings.variable(("feast_project",)) == "RECO_FEAST_PROJECT"


def test_a_sections_own_check_names_the_sections_variables() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(redis_url="redis://h:1/2", redis_cluster=True)
    where = Settings.variable(caught.value.errors()[0]["loc"])
    assert "RECO_REDIS_URL" in where and "RECO_REDIS_CLUSTER" in where
