"""The run lock: kept alive by a process of its own (a main thread that holds the GIL for
longer than the lock's expiry cannot starve it), a lock someone else took is noticed before
publication, and the keeper dies with a killed holder (whose lock then expires).

Each test uses a project name of its own on the shared Redis and deletes exactly its keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from recommender.batch.publication import RunLock, lock_key, publish
from recommender.contract.published import LiveLists, history_key, live_key, read_live
from recommender.errors import LockLost
from tests.support.repo import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def project(redis_url: str) -> Iterator[str]:
    name = f"tlock_{uuid.uuid4().hex[:10]}"
    yield name
    key = lock_key(name)
    redis.Redis.from_url(redis_url).delete(key, key + ":holder", live_key(name), history_key(name))


def _hold_the_gil(seconds: float) -> None:
    """Pure Python for ``seconds`` that lets no other thread run: with a switch interval longer
    than that, the interpreter never asks this thread to drop the GIL, as in a long C call
    that holds it (Feast's materialization held it for minutes in dask's tokenizer)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds * 20)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(old)


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


def _wait_gone(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if not _gone(p)]
    return alive


def test_the_lock_outlives_a_main_thread_that_holds_the_gil_past_its_expiry(
    redis_url: str, project: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    lock = RunLock(client, project, "busy", seconds=2)
    lock.acquire()
    beats: list[float] = []
    stop = threading.Event()

    def canary() -> None:  # proves that no thread of this process ran meanwhile
        while not stop.wait(0.05):
            beats.append(time.monotonic())

    watcher = threading.Thread(target=canary, daemon=True)
    try:
        watcher.start()
        time.sleep(0.3)
        _hold_the_gil(5.0)  # 2.5 x the lock's expiry
        stop.set()
        watcher.join()
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert max(gaps) > 4.0, "the GIL was not held"
        assert client.pttl(lock_key(project)) > 0
        lock.check()
        lists = LiveLists("a", "busy", "v1", "now", 1)
        publish(client, project, lock.token, lists)
        assert read_live(client, project) == lists
    finally:
        stop.set()
        lock.release()
    assert client.exists(lock_key(project)) == 0


def test_a_lock_someone_else_took_is_noticed_before_publication(
    redis_url: str, project: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    lock = RunLock(client, project, "first", seconds=2)
    lock.acquire()
    try:
        lock.check()
        # the lock expired while the holder was frozen, and another run took it
        client.set(lock_key(project), b"another-run-token", px=20_000)
        with pytest.raises(LockLost):
            lock.check()
        with pytest.raises(LockLost):
            publish(client, project, lock.token, LiveLists("a", "first", "v1", "now", 1))
        time.sleep(1.5)  # two renewal periods: the heartbeat never extends the other's lock
        assert client.get(lock_key(project)) == b"another-run-token"
        assert 17_000 < client.pttl(lock_key(project)) <= 20_000
    finally:
        lock.release()  # not ours any more: left alone
    assert client.get(lock_key(project)) == b"another-run-token"
    assert read_live(client, project) is None


def test_the_lock_keeper_dies_with_a_killed_holder_and_the_lock_expires(
    redis_url: str, project: str, tmp_path: Path
) -> None:
    code = (
        "import time, redis\n"
        "from recommender.batch.publication import RunLock\n"
        f"lock = RunLock(redis.Redis.from_url({redis_url!r}), {project!r}, 'doomed', 2)\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    children: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "held", errors.read_text()
        children = psutil.Process(parent.pid).children(recursive=True)
        assert children, "the lock is kept alive by a process of its own"
        time.sleep(2.5)  # longer than the lock's expiry: the keeper renews it
        client = redis.Redis.from_url(redis_url)
        assert client.exists(lock_key(project)) == 1
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(children, 5.0) == []
        deadline = time.monotonic() + 5.0  # nobody renews it: it expires 2 s after the kill
        while client.exists(lock_key(project)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.exists(lock_key(project)) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for child in children:
            if not _gone(child):
                child.kill()


def test_a_holder_frozen_by_the_os_still_lets_its_lock_expire(
    redis_url: str, project: str, tmp_path: Path
) -> None:
    """SIGSTOP (or Ctrl-Z) freezes the run but not its keeper: the keeper stops renewing
    then, so another run can take over, and the thawed run finds its lock lost."""
    code = (
        "import time, redis\n"
        "from recommender.batch.publication import RunLock\n"
        "from recommender.errors import LockLost\n"
        f"lock = RunLock(redis.Redis.from_url({redis_url!r}), {project!r}, 'frozen', 2)\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.1)\n"
        "    try:\n"
        "        lock.check()\n"
        "    except LockLost:\n"
        "        print('lost', flush=True)\n"
        "        lock.release()\n"
        "        break\n"
    )
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        parent = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    client = redis.Redis.from_url(redis_url)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "held", errors.read_text()
        os.kill(parent.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5.0
        while client.exists(lock_key(project)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.exists(lock_key(project)) == 0
        os.kill(parent.pid, signal.SIGCONT)
        assert parent.stdout.readline().strip() == "lost", errors.read_text()
        assert parent.wait(10) == 0
    finally:
        if parent.poll() is None:
            parent.kill()  # also when stopped
            parent.wait(10)
