"""Helper processes that die with their parent: the nightly job's list writers and its run
lock's keeper.

A job killed with SIGKILL (``kill -9``, the OOM killer, a node drain) runs no cleanup at all,
so each child notices by itself, three ways:

* ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux): the kernel kills the child when the thread
  that started it ends. Set only when that thread is the main thread, whose end is the
  process's end (a child of a short-lived worker thread would otherwise die with that thread);
* a watchdog thread that ends the child as soon as ``os.getppid()`` is no longer the parent
  (it was re-parented: the parent died); this also covers other platforms and children of
  other threads;
* the parent's end of the command pipe closes when the parent dies: a child waiting for a
  command reads end-of-file and returns.

:func:`start_child` runs ``function(inbox, outbox)`` of ``module`` in a fresh interpreter
(``python -c``, not a fork, and not multiprocessing's spawn: neither a re-import of the parent's
``__main__`` nor a resource-tracker helper that would outlive it), with two pipes wrapped as
:class:`multiprocessing.connection.Connection` (pickled messages, also for secrets that must
not appear in ``ps``). POSIX only (pipes passed by descriptor).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.25
ORPHANED_EXIT = 70  # the watchdog's exit status: the parent was gone
_ROOT = str(Path(__file__).resolve().parents[1])
# the package's own copy is found also when it is not installed (a source tree): its root is
# appended to the path, behind everything the interpreter would find by itself
_BOOT = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from recommender.lifeline import child_main; child_main()"
)


class Child:
    """The parent's handle on one helper process: ``send`` commands, ``recv`` replies."""

    def __init__(self, proc: subprocess.Popen[bytes], inbox: Connection, outbox: Connection):
        self.proc, self._inbox, self._outbox = proc, inbox, outbox

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: object) -> None:
        self._inbox.send(message)

    def poll(self, timeout: float = 0.0) -> bool:
        """True when a reply (or end-of-file: the child exited) can be read."""
        return self._outbox.poll(timeout)

    def recv(self) -> Any:
        """The next reply; ``EOFError`` when the child exited."""
        return self._outbox.recv()

    def close_input(self) -> None:
        """Close the command pipe: the child returns when it reads end-of-file."""
        if not self._inbox.closed:
            self._inbox.close()

    def kill(self) -> None:
        """SIGKILL it (if still running) and close both pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.close(timeout=10)

    def close(self, timeout: float = 10.0) -> int | None:
        """Close the command pipe, wait up to ``timeout`` seconds for the child to end, then
        kill it. Returns its exit status."""
        self.close_input()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if not self._outbox.closed:
            self._outbox.close()
        return self.proc.returncode


def start_child(module: str, function: str) -> Child:
    """Start ``module.function(inbox, outbox)`` in a helper process that dies with this one."""
    command_r, command_w = os.pipe()  # parent -> child
    reply_r, reply_w = os.pipe()  # child -> parent
    main_thread = threading.current_thread() is threading.main_thread()
    argv = [_ROOT, module, function, str(command_r), str(reply_w), str(os.getpid())]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, *argv, "pdeathsig" if main_thread else "watchdog"],
            pass_fds=(command_r, reply_w),
        )
    except BaseException:
        os.close(command_w)
        os.close(reply_r)
        raise
    finally:
        os.close(command_r)
        os.close(reply_w)
    return Child(proc, Connection(command_w, readable=False), Connection(reply_r, writable=False))


def child_main() -> None:
    """The helper process's entry point (see :data:`_BOOT`)."""
    module, function, inbox_fd, outbox_fd, parent, mode = sys.argv[2:8]
    die_with_parent(int(parent), pdeathsig=mode == "pdeathsig")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    target = getattr(importlib.import_module(module), function)
    inbox = Connection(int(inbox_fd), writable=False)
    outbox = Connection(int(outbox_fd), readable=False)
    target(inbox, outbox)


def die_with_parent(parent: int, pdeathsig: bool = True) -> None:
    """In a child: be killed by the kernel when ``parent`` dies (Linux, if ``pdeathsig``),
    and end from a watchdog thread when re-parented."""
    if pdeathsig and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # failure: the watchdog remains
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(ORPHANED_EXIT)
    threading.Thread(target=_watch, args=(parent,), name="lifeline", daemon=True).start()


def _watch(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:
            os._exit(ORPHANED_EXIT)
