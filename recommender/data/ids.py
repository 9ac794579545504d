"""The one rule for user and item ids: file ingest, the event log and the API all apply it.

An id is text of 1 to :data:`MAX_ID_LENGTH` characters (Unicode code points, not bytes) with
no control character (U+0000-U+001F, U+007F), once the whitespace around it is removed
(whatever ``str.strip()`` removes): that whitespace is never part of an id, for users and
items alike, so ``"a:b "`` and ``"a:b"`` are one id everywhere.

* Ingest (:mod:`recommender.data.schema`) removes it and logs one warning per column that
  counts the ids it changed, their rows, and how many of them now equal another spelling
  (their rows become one id's). In the users or items table, two rows that differ only by it
  are a duplicate id, an error like any duplicate.
* The API removes it too (``GET /recommendations?user_id=%20a:b`` answers for ``a:b``), and
  ``POST /events`` logs the id without it.
* Any other character is allowed (``/``, ``:``, ``%``, letters of any script); the API
  reaches every such id, e.g. ``GET /items/similar?item_id=a/3``.

An id the rule refuses stops an ingest before anything is written (:class:`InvalidDataset`
naming the column, how many ids and rows, and the first one), is a 422 at the API, and is
quarantined by the event log's reader, so a model never learns an id it cannot be asked about.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.errors import InvalidDataset

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 128
CONTROL_CHARACTERS = r"\x00-\x1f\x7f"  # a regular-expression class body
ID_PATTERN = rf"^[^{CONTROL_CHARACTERS}]+$"  # an id once the whitespace around it is removed
CONTROL_TEXT = "a control character (U+0000-U+001F, U+007F)"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
RULE = (
    f"an id has 1-{MAX_ID_LENGTH} characters and no control character once the whitespace "
    "around it is removed"
)
_PREVIEW = 40


def strip_id(value: str) -> str:
    """``value`` without the whitespace around it (the same characters as Arrow's
    ``utf8_trim_whitespace``, which ingest uses). Example: ``strip_id(" a:b\\t") == "a:b"``."""
    return value.strip()


def id_problem(value: str) -> str | None:
    """Why the (stripped) id ``value`` breaks the rule, or None.

    Example: ``id_problem("x" * 129) == "is 129 characters long (at most 128)"``.
    """
    if not value:
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long (at most {MAX_ID_LENGTH})"
    if _CONTROL.search(value):
        return f"has {CONTROL_TEXT}"
    return None


def check_id(value: str) -> str:
    """The id ``value`` stands for (stripped); :class:`ValueError` if the rule refuses it."""
    value = strip_id(value)
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _preview(value: str) -> str:
    if len(value) <= _PREVIEW:
        return repr(value)
    return f"{value[:_PREVIEW] + '…'!r} ({len(value)} characters)"


def _offences(raw: pa.Array, stripped: pa.Array, bad: pa.Array, what: str) -> str | None:
    """``what`` with counts and the first offender, for the rows flagged in ``bad``."""
    if not pc.any(bad).as_py():
        return None
    rows = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
    ids = pc.count_distinct(stripped.filter(bad)).as_py()
    first = int(rows[0])
    return (
        f"{ids} id(s) {what}, in {len(rows)} row(s) "
        f"(first at row {first}: {_preview(raw[first].as_py())})"
    )


def _warn_stripped(raw: pa.Array, stripped: pa.Array, table: str, column: str) -> None:
    changed = pc.not_equal(raw, stripped)
    if not pc.any(changed).as_py():
        return
    spellings = pc.unique(raw.filter(changed))
    targets = pc.unique(pc.utf8_trim_whitespace(spellings))
    touched = pc.is_in(stripped, value_set=targets)
    pairs = pa.table({"id": stripped.filter(touched), "raw": raw.filter(touched)})
    counts = pairs.group_by("id").aggregate([("raw", "count_distinct")])
    merged = counts.filter(pc.greater(counts["raw_count_distinct"], 1))["id"]
    example = spellings[0].as_py()
    if len(merged):  # show a spelling that became one with another
        example = next(s for s in spellings.to_pylist() if strip_id(s) == merged[0].as_py())
    log.warning(
        "%s: column %r: removed the whitespace around %d id(s) in %d row(s), "
        "%d of them now the same id as another spelling (e.g. %r -> %r); "
        "whitespace around an id is never part of it",
        table,
        column,
        len(spellings),
        pc.sum(changed).as_py(),
        len(merged),
        example,
        strip_id(example),
    )


def _controls(stripped: pa.Array) -> pa.Array:
    """Which ids hold a control character. A byte below 0x80 in UTF-8 is always that ASCII
    character, so one pass over the bytes (15x the regular expression) rules most columns out."""
    chunks = stripped.chunks if isinstance(stripped, pa.ChunkedArray) else [stripped]
    for chunk in chunks:
        data = chunk.buffers()[2]
        octets = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
        if (octets < 0x20).any() or (octets == 0x7F).any():
            return pc.match_substring_regex(stripped, f"[{CONTROL_CHARACTERS}]")
    return pa.array(np.zeros(len(stripped), dtype=bool))


def clean_ids(raw: pa.Array, table: str, column: str) -> pa.Array:
    """A column of ids (Arrow strings, no nulls) under the rule: stripped, with a warning
    when that changed any; :class:`InvalidDataset` naming what the rule refuses.

    Example: ``clean_ids(pa.array(["a ", "a"]), "interactions", "user_id")`` is
    ``["a", "a"]`` (and logs that one id changed and now equals another spelling).
    """
    stripped = pc.utf8_trim_whitespace(raw)
    length = pc.utf8_length(stripped)
    empty = pc.equal(length, 0)
    if pc.any(empty).as_py():
        row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise InvalidDataset(f"{table}: column {column!r} has an empty value at row {row}")
    problems = [
        _offences(
            raw,
            stripped,
            pc.greater(length, MAX_ID_LENGTH),
            f"longer than {MAX_ID_LENGTH} characters",
        ),
        _offences(raw, stripped, _controls(stripped), f"with {CONTROL_TEXT}"),
    ]
    found = [p for p in problems if p is not None]
    if found:
        raise InvalidDataset(
            f"{table}: column {column!r} has {'; and '.join(found)}; {RULE} "
            "(the API refuses other ids)"
        )
    _warn_stripped(raw, stripped, table, column)
    return stripped
