"""docs/configuration.md, generated from :class:`recommender.config.Settings` so that it cannot
drift: every setting's environment variable, where it lives in ``Settings`` (its section),
type, default and description, one table per section. Pure: reads the classes.

Regenerate with ``.venv/bin/python -m recommender.config.docs > docs/configuration.md``;
``tests/test_docs.py`` fails while the file is out of date.
"""

from __future__ import annotations

import sys
import types
import typing
from enum import Enum
from pathlib import PurePath
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from recommender.config import ENV_PREFIX, FLAT, SECTIONS, Settings

COMMAND = ".venv/bin/python -m recommender.config.docs > docs/configuration.md"
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)
_HEADER = ["| variable | in `Settings` | type | default | meaning |", "|---|---|---|---|---|"]


def configuration_markdown(settings_cls: type[Settings] = Settings) -> str:
    """The whole of docs/configuration.md for ``settings_cls``, ending with a newline.

    Example: ``"RECO_REDIS_URL" in configuration_markdown()`` is true.
    """
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from recommender/config/__init__.py by recommender/config/docs.py: "
        "do not edit.",
        f"     Regenerate with `{COMMAND}`. -->",
        "",
        f"Every setting is an environment variable with the `{ENV_PREFIX}` prefix, read once "
        "into one `Settings` object (`recommender/config/__init__.py`; jobs and the API build "
        "it with `get_settings()`), in sections: each stage takes only its section. A "
        "variable keeps its flat name whatever its section (`RECO_CHUNK_USERS` is "
        "`settings.nightly.chunk_users`). This page is generated from those classes: "
        f"regenerate it with `{COMMAND}`; `tests/test_docs.py` fails while it is out of date. "
        "A secret's default is never printed.",
        "",
        "## Paths and the project",
        "",
        *_HEADER,
    ]
    for name, field in settings_cls.model_fields.items():
        if name not in SECTIONS:
            lines.append(_row(f"{ENV_PREFIX}{name.upper()}", name, field))
    for section, model in SECTIONS.items():
        doc = " ".join((model.__doc__ or "").split())
        lines += ["", f"## `{section}`", "", _cell(doc), "", *_HEADER]
        for flat, path in FLAT.items():
            if path[0] == section:
                field = _leaf(settings_cls, path)
                lines.append(_row(f"{ENV_PREFIX}{flat.upper()}", ".".join(path), field))
    return "\n".join(lines) + "\n"


def _leaf(settings_cls: type[Settings], path: tuple[str, ...]) -> FieldInfo:
    model: type[BaseModel] = settings_cls
    for key in path[:-1]:
        annotation = model.model_fields[key].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[path[-1]]


def _row(env: str, where: str, field: FieldInfo) -> str:
    meaning = (field.description or "").replace("\n", " ")
    cells = (f"`{env}`", f"`{where}`", _type(field), _default(field), meaning)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """Markdown-safe table cell: a ``|`` would end the cell, a ``<`` open an HTML tag."""
    return text.replace("|", "\\|").replace("<", "\\<")


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


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].rstrip(".")


if __name__ == "__main__":
    sys.stdout.write(configuration_markdown())
