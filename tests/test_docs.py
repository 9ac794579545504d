"""The docs stay true: a README a newcomer reads in minutes, every repository path the docs
name exists, and docs/configuration.md is what ``recommender.config.docs`` generates from
``Settings`` today."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr

from recommender.config import FLAT, SECTIONS, ApiSettings, Settings
from recommender.config.docs import COMMAND, configuration_markdown

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
TOP_DIRS = (
    "recommender",
    "api",
    "jobs",
    "tests",
    "bench",
    "docs",
    "deploy",
    "scripts",
    "feature_repo",
    "notebooks",
)
TOP_FILES = ("docker-compose.yml", "pyproject.toml", "Dockerfile", "README.md")
# Files that name repository paths in their text (comments included).
OTHER_FILES = ("Dockerfile", "docker-compose.yml", "deploy/prometheus/prometheus.yml")
# Written at run time, never committed: named in the docs but not expected in the tree.
RUNTIME_PREFIXES = ("feature_repo/data/",)

# A path-like token: a top-level directory, a slash, then anything up to a space, quote,
# bracket, comma, semicolon or colon; not inside a longer path or a URL.
_PATH = re.compile(
    r"(?<![\w./<>@:-])(?:\./)?((?:" + "|".join(TOP_DIRS) + r")/[^\s`'\"()\[\]|,;:]*)"
)
_FILE = re.compile(r"(?<![\w./<>-])(" + "|".join(map(re.escape, TOP_FILES)) + r")(?![\w.-])")
_MODULE = re.compile(r"python3? -m ((?:bench|jobs|recommender|api|tests)(?:\.\w+)+)")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_PLACEHOLDER = re.compile(r"[*<>{}$…]|\.\.\.")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {_slug(h) for h in _HEADING.findall(text)}


def named_paths(text: str) -> set[str]:
    """Repository paths a text names: path-like tokens under a top-level directory, top-level
    files, and ``python -m`` modules (as files); globs, placeholders and URLs left out.

    Example: ``named_paths("see `api/online.py`")`` is ``{"api/online.py"}``.
    """
    out = set()
    for match in _PATH.finditer(text):
        token = match.group(1).split("#", 1)[0].rstrip(".")
        if _PLACEHOLDER.search(token) or token.startswith(RUNTIME_PREFIXES):
            continue
        out.add(token)
    out.update(_FILE.findall(text))
    for module in _MODULE.findall(text):
        out.add(module.replace(".", "/") + ".py")
    return out


def _exists(path: str) -> bool:
    """A file or directory, or a module named without ``.py`` (``jobs/nightly``) or as a
    package (``python -m recommender.config.docs`` -> ``recommender/config/docs.py``)."""
    target = ROOT / path
    if target.exists():
        return True
    if path.endswith(".py"):
        return (target.with_suffix("") / "__init__.py").exists()
    return target.with_name(target.name + ".py").exists()


def broken_links(doc: Path) -> list[str]:
    """Relative markdown links (files and #anchors) of ``doc`` that lead nowhere."""
    out = []
    text = doc.read_text()
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            out.append(f"{target} (no file {resolved.relative_to(ROOT)})")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            out.append(f"{target} (no heading #{anchor} in {resolved.relative_to(ROOT)})")
    return out


def missing_paths(files: list[Path]) -> dict[str, list[str]]:
    """``{file: [named paths that do not exist]}`` for the files with any."""
    out = {}
    for path in files:
        missing = sorted(p for p in named_paths(path.read_text()) if not _exists(p))
        if missing:
            out[str(path.relative_to(ROOT))] = missing
    return out


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference "
        "material to docs/"
    )


def test_every_path_the_docs_name_exists() -> None:
    files = _docs() + [ROOT / name for name in OTHER_FILES]
    assert missing_paths(files) == {}, "docs name repository paths that do not exist"


def test_every_relative_link_leads_somewhere() -> None:
    broken = {str(d.relative_to(ROOT)): b for d in _docs() if (b := broken_links(d))}
    assert broken == {}


def test_the_path_checker_sees_stale_names() -> None:
    text = (
        "`recommender/online.py` decodes; see [bench](docs/benchmarks.md#top) and "
        "python -m bench.nope, deploy/README.md, `feature_repo/data/events/*.jsonl`, "
        "`artifacts/models/<version>/`, http://127.0.0.1:8000/docs, `Dockerfile`."
    )
    assert named_paths(text) == {
        "recommender/online.py",
        "docs/benchmarks.md",
        "bench/nope.py",
        "deploy/README.md",
        "Dockerfile",
    }


def test_configuration_doc_is_generated_from_settings() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == configuration_markdown(), (
        f"docs/configuration.md is out of date with Settings: regenerate it with `{COMMAND}`"
    )


def test_configuration_doc_names_every_setting_and_no_secret() -> None:
    text = configuration_markdown(Settings)
    top = [n for n in Settings.model_fields if n not in SECTIONS]
    assert all(f"`RECO_{name.upper()}`" in text for name in [*top, *FLAT])

    class SecretiveApi(ApiSettings):
        api_keys: SecretStr | None = SecretStr("ops:do-not-print-me:admin")

    class Secretive(Settings):
        api: SecretiveApi = Field(default_factory=SecretiveApi)

    text = configuration_markdown(Secretive)
    assert "do-not-print-me" not in text and "| `RECO_API_KEYS` |" in text
