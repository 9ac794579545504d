"""Sections of docs/benchmarks.md, each written by its benchmark."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, start: str, end: str, section: str) -> None:
    """Put ``section`` (which starts with ``start`` and ends with ``end``) into the file,
    replacing only the previous version of that section and keeping every other note."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
