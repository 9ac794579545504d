"""`reco schedule`: run the nightly job on a cron expression, each run in its own process.

A fresh process per run releases the run's memory and gives it the same kill-safety as a run
started by the system's cron: a run that dies is logged and the next fire time still comes.
SIGTERM (``docker stop``) stops the loop; a run in progress gets SIGTERM too, records itself
as interrupted and releases its lock, and the next run resumes it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from croniter import CroniterBadCronError, croniter

from recommender.errors import InvalidRequest

log = logging.getLogger(__name__)


def parse_cron(expression: str) -> str:
    """Validate a cron expression (5 fields, or 6 with seconds last)."""
    try:
        croniter(expression)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidRequest(f"invalid cron expression {expression!r}: {exc}") from exc
    return expression


def next_fire(expression: str, after: datetime) -> datetime:
    return croniter(expression, after).get_next(datetime)  # type: ignore[no-any-return]


def run_schedule(
    expression: str,
    command: Sequence[str] | None = None,
    max_runs: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Loop: sleep until the next fire time (UTC), run ``command`` (default ``reco
    nightly``), log its outcome. Returns the number of runs started."""
    parse_cron(expression)
    command = list(command or [str(Path(sys.executable).with_name("reco")), "nightly"])
    stop = stop or threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def on_term(signum: int, frame: object) -> None:
        log.info("schedule: signal %d, stopping", signum)
        stop.set()
        for proc in child:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
    runs = 0
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        now = datetime.now(timezone.utc)
        fire = next_fire(expression, now)
        log.info("schedule: next nightly run at %s", fire.isoformat())
        if stop.wait((fire - now).total_seconds()):
            break
        runs += 1
        proc = subprocess.Popen(command)
        child[:] = [proc]
        code = proc.wait()
        (log.info if code == 0 else log.error)("schedule: run %d exited with %d", runs, code)
    return runs
