"""Blue/green publication of the nightly lists, and the run lock (what readers see of it:
:mod:`recommender.contract.published`).

The lists live in two Feast views, ``user_recommendations_a`` and ``_b`` (the *slots*). A
pointer key names the live slot and the run that filled it; APIs read only the live slot and
only rows stamped with the live run id. A run writes the other slot, then switches the pointer
in one Lua script that first checks the run still holds the lock. So:

* a run killed at any point leaves the pointer, and the slot it names, untouched;
* two runs cannot both publish: the lock admits one, and the switch is fenced by its token
  (a run whose lock expired while it was stalled is refused at the switch);
* a rerun may rewrite the unpublished slot as often as it likes.

The lock is redis-py's ``Lock`` (a token with an expiry), kept alive by a heartbeat process
that the GIL of the run cannot starve (:mod:`recommender.batch.lockkeeper`) and that dies with
the run; a killed holder's lock expires ``lock_seconds`` later.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from redis.exceptions import LockError, RedisClusterException
from redis.lock import Lock

from recommender.batch.lockkeeper import LockKeeper, spec_for
from recommender.contract.published import LiveLists, history_key, live_key, slot_key
from recommender.errors import LockLost, RunLocked
from recommender.featurestore.keys import project_key
from recommender.featurestore.redisclient import RedisClient

log = logging.getLogger(__name__)

HISTORY_LENGTH = 100

_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
return 1
"""


# Every key below is hash-tagged by the project (recommender/featurestore/keys.py): the
# scripts above touch several of them at once, which a Redis Cluster allows in one slot only.


def lock_key(project: str) -> str:
    return project_key(project, "nightly", "lock")


def holder_key(project: str) -> str:
    """Who holds the run lock (shown to a run that finds it taken); expires with it."""
    return project_key(project, "nightly", "lock", "holder")


def mark_slot(client: RedisClient, project: str, slot: str, run_id: str) -> None:
    client.set(slot_key(project, slot), run_id)


def publish(client: RedisClient, project: str, token: bytes, lists: LiveLists) -> None:
    """Make ``lists`` live, atomically, if ``token`` still holds the run lock."""
    ok = client.eval(
        _PUBLISH,
        3,
        lock_key(project),
        live_key(project),
        history_key(project),
        token,
        lists.to_json(),
        HISTORY_LENGTH,
    )
    if not ok:
        raise LockLost(
            f"run {lists.run_id} no longer holds the nightly lock of {project!r}; "
            "another run may have taken over, so it did not publish"
        )


class RunLock:
    """The nightly run lock of one project, kept alive by a heartbeat process of its own
    (:mod:`recommender.batch.lockkeeper`): a main thread that holds the GIL for longer than
    the lock's expiry cannot starve it, and it dies with the run.

    ``lost`` is set when the lock is found lost (the keeper could not extend it, or its key
    holds another token); :meth:`check` raises then, and the run stops before publishing
    (:func:`publish` refuses anyway)."""

    def __init__(self, client: RedisClient, project: str, run_id: str, seconds: float) -> None:
        self.client, self.project, self.run_id, self.seconds = client, project, run_id, seconds
        self.lock = Lock(client, lock_key(project), timeout=seconds, thread_local=False)
        self.holder_key = holder_key(project)
        self.lost = threading.Event()
        self._stop = _HeartbeatSwitch(self)
        self._keeper: LockKeeper | None = None
        self._since = ""
        self._why = ""

    @property
    def token(self) -> bytes:
        token = self.lock.local.token
        if token is None:
            raise LockLost("the run lock is not held")
        return token  # type: ignore[no-any-return]

    @property
    def heartbeat_pid(self) -> int | None:
        """The keeper process's pid while it renews the lock."""
        return self._keeper.pid if self._keeper is not None else None

    def acquire(self, wait_seconds: float = 0.0) -> None:
        keeper = LockKeeper(
            spec_for(self.client, lock_key(self.project), self.holder_key, self.seconds)
        )
        try:
            got = self.lock.acquire(
                blocking=wait_seconds > 0, blocking_timeout=wait_seconds or None
            )
        except BaseException:
            keeper.kill()
            raise
        if not got:
            keeper.kill()
            raise RunLocked(self._describe_holder())
        try:
            self._since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.rename(self.run_id)
            keeper.start(self.token, renew=self._renew_here)
        except BaseException as exc:
            keeper.kill()
            self._release_lock()
            if isinstance(exc, (RuntimeError, LockError)):
                raise LockLost(
                    f"the nightly lock of {self.project!r} cannot be kept: {exc}"
                ) from exc
            raise
        self._keeper = keeper
        self.lost.clear()
        self._stop.reset()

    def _renew_here(self) -> None:
        """Renew from this process (only while the keeper starts)."""
        self.lock.extend(self.seconds, replace_ttl=True)
        self.client.pexpire(self.holder_key, int(self.seconds * 1000))

    def rename(self, run_id: str) -> None:
        """Record who holds the lock (shown to a run that finds it taken)."""
        self.run_id = run_id
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
        holder["since"] = self._since
        self.client.set(self.holder_key, json.dumps(holder), px=int(self.seconds * 1000))

    def _describe_holder(self) -> str:
        raw = self.client.get(self.holder_key)
        ttl: int = self.client.pttl(lock_key(self.project))  # type: ignore[assignment]
        who = "another run"
        if raw:
            h: dict[str, Any] = json.loads(raw)  # type: ignore[arg-type]
            who = f"run {h['run_id']} (pid {h['pid']} on {h['host']}, since {h['since']})"
        expires = f"; its lock expires in {ttl / 1000:.0f}s unless renewed" if ttl > 0 else ""
        return f"{who} holds the nightly lock of project {self.project!r}{expires}"

    def _lose(self, why: str) -> None:
        if not self.lost.is_set():
            log.error("nightly lock of %s lost: %s", self.project, why)
            self._why = why
            self.lost.set()
        self.stop_heartbeat()

    def check(self) -> None:
        """Raise ``LockLost`` unless the lock is still this run's: what the keeper reported,
        and the lock key itself (one GET; a Redis error here leaves the decision to the
        keeper and to :func:`publish`'s fence)."""
        if not self.lost.is_set() and self._keeper is not None:
            why = self._keeper.lost()
            if why is not None:
                self._lose(why)
        token = self.lock.local.token
        if not self.lost.is_set() and token is not None:
            try:
                current = self.client.get(lock_key(self.project))
            except (redis.RedisError, RedisClusterException):
                current = token
            if isinstance(current, str):
                current = current.encode()
            if current != token:
                self._lose("its key holds another run's token or has expired")
        if self.lost.is_set():
            raise LockLost(
                f"run {self.run_id} lost the nightly lock of {self.project!r}: {self._why}"
            )

    def stop_heartbeat(self) -> None:
        """Stop renewing the lock (it then expires ``seconds`` later); idempotent."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop()

    def release(self) -> None:
        self.stop_heartbeat()
        self._release_lock()

    def _release_lock(self) -> None:
        try:
            self.lock.release()
            self.client.delete(self.holder_key)
        except Exception as exc:  # noqa: BLE001 - expired or taken over: nothing to release
            log.warning("nightly lock of %s was not released: %s", self.project, exc)


class _HeartbeatSwitch:
    """``RunLock._stop``: ``set()`` stops the heartbeat, as in a holder frozen by the OS
    (tests use it to let a held lock expire)."""

    def __init__(self, lock: RunLock) -> None:
        self._lock, self._set = lock, False

    def set(self) -> None:
        self._set = True
        self._lock.stop_heartbeat()

    def is_set(self) -> bool:
        return self._set

    def reset(self) -> None:
        self._set = False
