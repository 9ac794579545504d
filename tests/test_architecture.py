"""The tree's rules, checked on the source: stage packages, imports one way and without cycles,
no imports hidden in functions, every Feast name from ``names.py``, a repository that works
bare with Feast's own CLI."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from recommender.featurestore import names
from tests.support.repo import ROOT

PACKAGES = ("recommender", "jobs", "api")
STAGES = (
    "data",
    "featurestore",
    "models",
    "training",
    "batch",
    "serving",
    "events",
    "lifecycle",
    "evaluation",
    "ranking",
    "contract",
    "pipeline",
)
# the serving side reads what the nightly publishes through the contract, never the batch
# package (its lock, writer and engines)
SERVING_SIDE = ("recommender.serving", "recommender.lifecycle", "api")
JOBS_FUNCTION_LINES = 40


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _target(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> list[tuple[ast.stmt, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node, f"{node.module}.{a.name}") for a in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for _, name in _imports(path):
            target = _target(name)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def test_no_import_cycles() -> None:
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_api_and_jobs_never_import_each_other() -> None:
    crossing = [
        (m, t)
        for m, targets in _graph().items()
        for t in targets
        if {m.split(".")[0], t.split(".")[0]} == {"api", "jobs"}
    ]
    assert crossing == []


def test_the_library_imports_neither_api_nor_jobs() -> None:
    upward = [
        (m, t)
        for m, targets in _graph().items()
        if m.startswith("recommender")
        for t in targets
        if t.split(".")[0] in ("api", "jobs")
    ]
    assert upward == []


def test_serving_reads_the_published_lists_through_the_contract_only() -> None:
    reaching = [
        (m, t)
        for m, targets in _graph().items()
        if m.startswith(SERVING_SIDE)
        for t in targets
        if t.startswith("recommender.batch")
    ]
    assert reaching == []


def test_jobs_is_a_thin_shell() -> None:
    """The runs live in recommender/pipeline/: a CLI or cron function stays short, and
    benchmarks and tests run pipelines without going through jobs/ (tests drive the CLI
    itself through ``jobs.cli``)."""
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
        for module, path in MODULES.items()
        if module.startswith("jobs")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or node.lineno) - node.lineno + 1 > JOBS_FUNCTION_LINES
    ]
    assert long == []
    reaching = []
    for path in [*(ROOT / "bench").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        if path.is_relative_to(ROOT / "tests" / "jobs"):
            continue
        for _, name in _imports(path):
            if name.split(".")[0] == "jobs" and not name.startswith("jobs.cli."):
                reaching.append(f"{path.relative_to(ROOT)}: {name}")
    assert reaching == []


def test_no_imports_inside_functions() -> None:
    inner = [
        f"{MODULES[m].relative_to(ROOT)}:{node.lineno} {name}"
        for m in MODULES
        for node, name in _imports(MODULES[m])
        if node.col_offset > 0 and not name.startswith(("ray", "matplotlib", "playwright"))
    ]
    assert inner == []


def test_stage_packages_and_few_top_level_modules() -> None:
    top = sorted(p.stem for p in (ROOT / "recommender").glob("*.py") if p.stem != "__init__")
    assert len(top) <= 6, top
    for stage in STAGES:
        init = ROOT / "recommender" / stage / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()) <= 3, f"{init}: a short docstring says what it owns"


def test_module_names_are_unique() -> None:
    seen: dict[str, list[str]] = {}
    for module in MODULES:
        leaf = module.rpartition(".")[2]
        if MODULES[module].name != "__init__.py" and leaf not in ("main", "common", "app"):
            seen.setdefault(leaf, []).append(module)
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def test_feast_names_are_not_string_literals_outside_names_py() -> None:
    reserved = {
        value
        for key, value in vars(names).items()
        if key.isupper()
        and isinstance(value, str)
        and key not in ("USER_KEY", "ITEM_KEY")
        and value not in ("user", "item", "users", "items")
    }
    reserved |= {names.list_view(s) for s in names.SLOTS}
    reserved |= {names.precomputed_service(s) for s in names.SLOTS}
    found = []
    for module, path in MODULES.items():
        if module == "recommender.featurestore.names":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in reserved:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []


def test_feature_repository_definitions_use_names_py() -> None:
    source = (ROOT / "feature_repo" / "definitions.py").read_text()
    assert "from recommender.featurestore import names" in source
    assert '"user_activity"' not in source and '"serving_realtime_v1"' not in source


def test_feast_apply_works_bare_in_a_fresh_copy(tmp_path: Path) -> None:
    """A data engineer's plain `feast apply`, no RECO_* variable set: the defaults (project
    reco, Redis on 127.0.0.1:6379) are valid. Apply on a fresh registry only adds objects, so
    it leaves any other user's data of project reco alone (and this test never tears down)."""
    repo = tmp_path / "feature_repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECO_", "FEAST_"))}
    feast = Path(sys.executable).with_name("feast")
    proc = subprocess.run(
        [str(feast), "apply"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "pydantic" not in proc.stderr
    listed = subprocess.run(
        [str(feast), "feature-views", "list"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert names.USER_ACTIVITY in listed.stdout and names.list_view("a") in listed.stdout
