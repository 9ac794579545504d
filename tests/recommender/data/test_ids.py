"""The id rule (pure): its one-id form (the API, the event log) and its column form (ingest)
give the same verdict and the same id for every value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recommender.data.ids import MAX_ID_LENGTH, check_id, clean_ids
from recommender.errors import InvalidDataset

WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]
# blanks, controls, look-alikes that are not whitespace (BOM, zero-width space), and the rest
ALPHABET = [*WHITESPACE, "\x00", "\x01", "\x7f", "\ufeff", "\u200b", "/", "%", "a", "é", "語"]


def _column_verdict(value: str) -> str | None:
    try:
        return str(clean_ids(pa.array([value]), "t", "c")[0].as_py())
    except InvalidDataset:
        return None


def _one_verdict(value: str) -> str | None:
    try:
        return check_id(value)
    except ValueError:
        return None


def test_the_column_and_the_one_id_forms_agree(rng: np.random.Generator) -> None:
    values = [c + "x" + c for c in WHITESPACE]  # every character strip() removes
    values += ["x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1), " " + "é" * MAX_ID_LENGTH + "\n"]
    for _ in range(400):
        size = int(rng.choice([1, 2, 3, MAX_ID_LENGTH - 1, MAX_ID_LENGTH, MAX_ID_LENGTH + 2]))
        values.append("".join(rng.choice(ALPHABET, size=size)))
    verdicts = [(v, _column_verdict(v), _one_verdict(v)) for v in values]
    assert [(v, c, o) for v, c, o in verdicts if c != o] == []
    kept = sum(c is not None for _, c, _ in verdicts)
    assert 0 < kept < len(values)  # both kinds of verdict were exercised


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("x" * 129, "is 129 characters long (at most 128)"),
        ("a\x00b", "has a control character"),
        (" \t", "is empty"),
    ],
)
def test_a_refused_id_says_why(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_id(value)
