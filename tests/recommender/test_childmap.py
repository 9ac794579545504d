"""The ordered map over helper processes: results in order, errors in the caller, no helper
left behind."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

from recommender.childmap import RemoteTraceback, map_in_children
from recommender.errors import InvalidDataset


def square_and_pid(x: int) -> tuple[int, int]:
    time.sleep(0.01 * (x % 3))  # later tasks may finish first: the order must still hold
    return x * x, os.getpid()


def echo_big(blob: bytes) -> bytes:
    time.sleep(0.05)  # busy while the caller hands out its next tasks
    return blob + blob


def fail_on_three(x: int) -> int:
    if x == 3:
        raise InvalidDataset(f"task {x} is bad")
    return x


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_results_come_back_in_the_tasks_order(workers: int) -> None:
    out = list(map_in_children(__name__, "square_and_pid", range(9), workers))
    assert [value for value, _ in out] == [x * x for x in range(9)]
    pids = {pid for _, pid in out}
    assert (pids == {os.getpid()}) if workers == 0 else (os.getpid() not in pids)
    assert len(pids) == max(workers, 1)


def test_an_error_in_a_helper_is_raised_in_the_caller_with_its_traceback() -> None:
    got = []
    with pytest.raises(InvalidDataset, match="task 3 is bad") as info:
        for value in map_in_children(__name__, "fail_on_three", range(8), 2):
            got.append(value)
    assert got == [0, 1, 2]
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fail_on_three" in str(info.value.__cause__)
    assert psutil.Process().children() == []  # the other helper was stopped


def test_stopping_early_stops_the_helpers() -> None:
    results = map_in_children(__name__, "square_and_pid", range(100), 2)
    assert next(results)[0] == 0
    assert len(psutil.Process().children()) == 2
    results.close()
    assert psutil.Process().children() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        list(map_in_children(__name__, "square_and_pid", range(2), -1))


def test_tasks_and_results_bigger_than_a_pipe_do_not_deadlock() -> None:
    """The caller hands a busy helper its next task while the helper sends a result: with
    both bigger than the pipe's buffer (64 KiB), each side must not wait for the other."""
    tasks = [bytes([i]) * 3_000_000 for i in range(8)]
    out: list[bytes] = []
    worker = threading.Thread(
        target=lambda: out.extend(map_in_children(__name__, "echo_big", tasks, 2)), daemon=True
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "map_in_children deadlocked"
    assert out == [task + task for task in tasks]
