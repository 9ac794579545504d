import pandas as pd
import pytest

from recommender.data.schema import canonical_interactions, canonical_items, canonical_users
from recommender.data.tables import build_tables
from recommender.errors import InvalidDataset


def raw(**cols: list) -> pd.DataFrame:
    base = {"user_id": ["1", "2"], "item_id": ["10", "11"], "timestamp": ["0", "86400"]}
    base.update(cols)
    return pd.DataFrame(base)


def test_interactions_are_coerced_to_the_canonical_schema() -> None:
    out = canonical_interactions(raw(rating=["4", "5"]))
    assert list(out.columns) == ["user_id", "item_id", "rating", "event_timestamp"]
    assert out["rating"].tolist() == [4.0, 5.0]
    assert str(out["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["event_timestamp"].iloc[1] == pd.Timestamp("1970-01-02", tz="UTC")


def test_rating_defaults_to_one_and_iso_timestamps_parse() -> None:
    out = canonical_interactions(raw(timestamp=["2024-01-01T00:00:00Z", "2024-01-02"]))
    assert out["rating"].tolist() == [1.0, 1.0]
    assert out["event_timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"user_id": ["1"], "timestamp": [0]}), "'item_id'"),
        (raw().drop(columns="timestamp"), "'timestamp'"),
        (raw(rating=["4", "great"]), "column 'rating' must be numeric; got 'great' at row 1"),
        (raw(timestamp=["0", "yesterday-ish"]), "column 'timestamp' must be a timestamp"),
        (raw(user_id=["1", None]), "column 'user_id' has an empty value at row 1"),
    ],
)
def test_bad_interactions_name_the_column(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message.replace("(", r"\(")):
        canonical_interactions(frame)


def test_profiles_start_at_first_interaction_and_bad_ages_become_null() -> None:
    inter = canonical_interactions(raw())
    users = canonical_users(pd.DataFrame({"user_id": ["1", "2"], "age": ["30", "n/a"]}), inter)
    assert users["age"].tolist()[0] == 30 and users["age"].isna().tolist()[1]
    assert users.set_index("user_id").loc["2", "event_timestamp"] == pd.Timestamp(
        "1970-01-02", tz="UTC"
    )


def test_items_split_genres_and_reject_duplicates() -> None:
    inter = canonical_interactions(raw())
    items = canonical_items(
        pd.DataFrame({"item_id": ["10", "11"], "genres": ["A|B", "C D"]}), inter
    )
    assert items["genres"].tolist() == [["A", "B"], ["C", "D"]]
    assert items["title"].tolist() == ["10", "11"]  # id stands in for a missing title
    with pytest.raises(InvalidDataset, match="duplicate id '10'"):
        canonical_items(pd.DataFrame({"item_id": ["10", "10"]}), inter)


def test_interactions_must_reference_known_items() -> None:
    with pytest.raises(InvalidDataset, match="missing from items: 11"):
        build_tables(raw(), items=pd.DataFrame({"item_id": ["10"]}))


def test_genres_read_back_from_parquet_stay_lists(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Parquet gives list columns back as numpy arrays: re-canonicalising a stored items table
    must keep ``['Action', 'Comedy']``, not split the array's text into ``"['Action'"``."""
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": ["2024-01-01"]})
    items = pd.DataFrame(
        {"item_id": ["i", "j"], "title": ["I", "J"], "genres": ["Action|Comedy", ""]}
    )
    stored = canonical_items(items, canonical_interactions(inter))
    stored.to_parquet(tmp_path / "items.parquet")
    again = canonical_items(
        pd.read_parquet(tmp_path / "items.parquet"), canonical_interactions(inter)
    )
    assert again["genres"].map(list).tolist() == [["Action", "Comedy"], []]


LONG = "u" * 300  # issue 28.3: ingested, trained and recommended, then a 422 at the API


@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_ids_the_api_cannot_take_stop_the_ingest_naming_them(column: str) -> None:
    frame = raw(**{column: [LONG, LONG]})
    with pytest.raises(InvalidDataset) as info:
        build_tables(frame)
    message = str(info.value)
    assert f"column {column!r}" in message and "1 id(s) longer than 128 characters" in message
    assert "in 2 row(s)" in message and "(300 characters)" in message
    with pytest.raises(InvalidDataset, match="1 id\\(s\\) with a control character"):
        build_tables(raw(**{column: ["ok", "tab\tinside"]}))


def test_an_id_of_exactly_128_characters_is_kept() -> None:
    longest = "é" * 128  # characters, not bytes
    out = canonical_interactions(raw(user_id=[longest, "2"]))
    assert set(out["user_id"]) == {longest, "2"}


def test_whitespace_around_ids_is_removed_for_users_and_items_alike_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 28.5: ``a:b`` and ``a:b `` became one user without a word."""
    frame = raw(
        user_id=["a:b", "a:b ", " c"],
        item_id=["x:y", "x:y\t", "z"],
        timestamp=["0", "60", "120"],
    )
    with caplog.at_level("WARNING", logger="recommender.data"):
        tables = build_tables(frame)
    assert sorted(tables["users"]["user_id"]) == ["a:b", "c"]
    assert sorted(tables["items"]["item_id"]) == ["x:y", "z"]
    messages = [r.getMessage() for r in caplog.records]
    users = next((m for m in messages if "column 'user_id'" in m), "")
    items = next((m for m in messages if "column 'item_id'" in m), "")
    assert "removed the whitespace around 2 id(s) in 2 row(s)" in users
    assert "1 of them now the same id as another spelling (e.g. 'a:b ' -> 'a:b')" in users
    assert "removed the whitespace around 1 id(s) in 1 row(s)" in items
    assert "1 of them now the same id as another spelling (e.g. 'x:y\\t' -> 'x:y')" in items


@pytest.mark.parametrize(("table", "key"), [("users", "user_id"), ("items", "item_id")])
def test_users_and_items_tables_refuse_ids_that_differ_only_by_whitespace(
    table: str, key: str
) -> None:
    frame = raw(user_id=["a:b", "2"], item_id=["a:b", "11"])
    entity = pd.DataFrame({key: ["a:b", "2", "11", "a:b "]})
    with pytest.raises(InvalidDataset) as info:
        build_tables(frame, **{table: entity})
    assert f"{table}: column {key!r} has duplicate id 'a:b' (rows 0 and 3: 'a:b', 'a:b ')" in str(
        info.value
    )
