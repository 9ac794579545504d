import pytest
from pydantic import ValidationError

from recommender.config import Settings


def test_feast_connection_string_from_url() -> None:
    s = Settings(redis_url="redis://:p%40ss@cache:6380/2", feast_project="demo")
    assert s.feast_env() == {
        "RECO_FEAST_PROJECT": "demo",
        "RECO_FEAST_REDIS": "cache:6380,db=2,password=p@ss",
    }


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_TOP_N", "7")
    assert Settings().top_n == 7


@pytest.mark.parametrize("field", [{"feast_project": "bad-name"}, {"redis_url": "http://x"}])
def test_invalid_settings_are_rejected(field: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**field)
