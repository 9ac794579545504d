"""The container probe stays light: it must answer well inside compose's 5 s timeout, so it
never imports the CLI's heavy stack (Feast, pandas, the models)."""

from __future__ import annotations

import subprocess
import sys

from jobs.healthcheck import main
from tests.support.repo import ROOT, free_port


def test_the_probe_imports_neither_feast_nor_pandas() -> None:
    code = (
        "import sys, jobs.healthcheck\n"
        "heavy = {'feast', 'pandas', 'implicit', 'faiss', 'typer'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_nothing_listening_is_unhealthy(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--url", f"http://127.0.0.1:{free_port()}/ready", "--timeout", "1"]) == 1
    assert "unhealthy" in capsys.readouterr().err
