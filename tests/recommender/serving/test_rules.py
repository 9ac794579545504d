"""The rule engine on a catalog with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.data.vocab import Vocab
from recommender.errors import InvalidRequest
from recommender.serving.rules import (
    Catalog,
    Rules,
    parse_cap,
    parse_feature_values,
    rules_from,
    select,
)

ITEMS = Vocab.from_ids(["i0", "i1", "i2", "i3", "i4", "i5"])
FRAME = pd.DataFrame(
    {
        "item_id": ["i0", "i1", "i2", "i3", "i4", "i5"],
        "genres": [["A"], ["A", "B"], ["B"], ["C"], ["A"], ["B"]],
        "available": [True, True, False, True, True, True],
        "title": ["t"] * 6,
    }
)
CATALOG = Catalog.from_frame(FRAME, ITEMS)
ROWS = np.arange(6)
SCORES = np.linspace(1, 0, 6)


def chosen(rules: Rules, k: int = 6) -> list[int]:
    return select(ROWS, SCORES, rules, CATALOG, k)[0].tolist()


def test_unavailable_and_excluded_items_are_dropped_in_order() -> None:
    assert chosen(Rules()) == [0, 1, 3, 4, 5]
    assert chosen(Rules(exclude_rows=frozenset({0, 4}))) == [1, 3, 5]
    assert chosen(Rules(), k=2) == [0, 1]


def test_include_and_exclude_categorical_values() -> None:
    assert chosen(Rules(include={"genres": frozenset({"B"})})) == [1, 5]
    assert chosen(Rules(include={"genres": frozenset({"B", "C"})})) == [1, 3, 5]
    assert chosen(Rules(exclude={"genres": frozenset({"A"})})) == [3, 5]


def test_per_category_cap_counts_every_value_of_an_item() -> None:
    # i0 (A), i1 (A,B): A is full at 2 -> i4 (A) skipped; i3 (C), i5 (B) fit.
    assert chosen(Rules(cap_feature="genres", cap=2)) == [0, 1, 3, 5]
    assert chosen(Rules(cap_feature="genres", cap=1)) == [0, 3, 5]


def test_missing_metadata_means_available_without_features() -> None:
    catalog = Catalog.from_frame(FRAME.iloc[:2], ITEMS)
    assert catalog.available.all()
    rows, _ = select(ROWS, SCORES, Rules(include={"genres": frozenset({"A"})}), catalog, 6)
    assert rows.tolist() == [0, 1]


def test_parsing_and_errors_name_the_problem() -> None:
    assert parse_feature_values(["genres:A", "genres:B "], "include") == {
        "genres": frozenset({"A", "B"})
    }
    assert parse_cap("genres:2") == ("genres", 2)
    with pytest.raises(InvalidRequest, match="expected 'feature:value'"):
        parse_feature_values(["genres"], "include")
    with pytest.raises(InvalidRequest, match="N >= 1"):
        parse_cap("genres:0")
    with pytest.raises(InvalidRequest, match="unknown item feature 'colour'.*genres"):
        rules_from(ITEMS, CATALOG, include=["colour:red"])
    rules = rules_from(ITEMS, CATALOG, exclude_item_ids=["i1", "nope"])
    assert rules.exclude_rows == frozenset({1})
