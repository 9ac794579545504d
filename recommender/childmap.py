"""An ordered ``map`` over helper processes that die with their parent.

:func:`map_in_children` runs ``module.function(task)`` for each task in ``workers`` helper
processes of :mod:`recommender.lifeline` and yields the results in the tasks' order. At most
``ahead`` tasks per process are handed out before their results are read, so a caller that
consumes results slowly (writing them to disk, say) holds a bounded number of them in memory,
and the processes keep working on the next tasks meanwhile.

An exception raised by the function is raised in the caller (with the remote traceback as its
``__cause__``); the other processes are then killed, as they are when the caller stops
iterating early.
"""

from __future__ import annotations

import importlib
import pickle
import queue
import threading
import traceback
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from typing import Any

from recommender.lifeline import Child, start_child

_NO_TASK = object()


class RemoteTraceback(Exception):
    """The traceback of an error raised in a helper process (as ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0])


def map_in_children(
    module: str, function: str, tasks: Iterable[Any], workers: int, ahead: int = 2
) -> Generator[Any, None, None]:
    """``map(module.function, tasks)`` in ``workers`` processes, results in order (``0``:
    in this process). Tasks and results travel pickled."""
    if workers < 0 or ahead < 1:
        raise ValueError(f"workers must be >= 0 and ahead >= 1, not {workers}, {ahead}")
    if workers == 0:
        target = getattr(importlib.import_module(module), function)
        yield from map(target, tasks)
        return
    children: list[Child] = []
    done = False
    try:
        for _ in range(workers):
            children.append(start_child(__name__, "serve_calls"))
            children[-1].send((module, function))
        todo = iter(tasks)
        pending: deque[Child] = deque()
        sent = 0

        def hand_out() -> None:
            nonlocal sent
            task = next(todo, _NO_TASK)
            if task is not _NO_TASK:
                children[sent % workers].send(task)
                pending.append(children[sent % workers])
                sent += 1

        for _ in range(workers * ahead):
            hand_out()
        while pending:
            result = _reply(pending.popleft())
            hand_out()  # before the caller's work on this result: the child keeps busy
            yield result
        done = True
    finally:
        for child in children:
            child.close_input()
        for child in children:
            if done:
                child.close(timeout=10)
            else:
                child.kill()


def _reply(child: Child) -> Any:
    try:
        kind, value, remote = child.recv()
    except (EOFError, OSError) as exc:
        status = child.proc.wait()
        raise BrokenProcessPool(f"helper process {child.pid} exited (status {status})") from exc
    if kind == "error":
        value.__cause__ = RemoteTraceback(remote)
        raise value
    return value


def serve_calls(inbox: Connection, outbox: Connection) -> None:
    """The helper process: the function's name first, then one reply per task, until the
    caller closes the pipe.

    Tasks are read by a thread of their own while the function runs: the caller hands out
    the next task while this process sends a result, and with both bigger than a pipe's
    buffer, a helper that only read between calls would wait on the caller while the caller
    waits on it."""
    module, function = inbox.recv()
    target = getattr(importlib.import_module(module), function)
    tasks: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        while True:
            try:
                tasks.put(inbox.recv())
            except (EOFError, OSError):
                tasks.put(_NO_TASK)
                return

    threading.Thread(target=read, name="childmap-inbox", daemon=True).start()
    while (task := tasks.get()) is not _NO_TASK:
        try:
            reply: tuple[str, Any, str] = ("ok", target(task), "")
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller
            reply = ("error", exc, traceback.format_exc())
        send_reply(outbox, reply)


def send_reply(outbox: Connection, reply: tuple[str, Any, str]) -> None:
    """Send ``(kind, value, traceback)``; an error that cannot be pickled is sent as a
    :class:`RuntimeError` with its text."""
    try:
        outbox.send(reply)
    except (pickle.PicklingError, TypeError, AttributeError):
        error = RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")
        outbox.send(("error", error, reply[2]))
