"""The run lock's heartbeat, in a process of its own.

A heartbeat thread needs the GIL to renew the lock, and the run's main thread can hold the GIL
for longer than the lock lives: at 200k users the first night's materialization held it for
minutes (dask's tokenizer inside Feast), the thread could not renew the 60 s lock, and the
finished night was refused at publication. The keeper is a small separate interpreter (it
imports only redis) with its own connection, so nothing the job does can starve it; it dies
with the job (:mod:`recommender.lifeline`), after which the lock expires as before.

On a Redis Cluster (``RECO_REDIS_CLUSTER``) the keeper opens a cluster client seeded by the
nodes the run's client knows; the lock and its holder record share a hash tag, so the renewal
script runs in their one slot.

Protocol (pickled messages on the :class:`~recommender.lifeline.Child` pipes): the parent sends
the connection settings and keys, the keeper answers ``("up", None)``; once the lock is acquired
the parent sends its token, the keeper renews at once and answers ``("ready", None)``, then
renews every third of the expiry, except while the parent is stopped by a signal (SIGSTOP,
Ctrl-Z: a frozen holder's lock expires as it always did). It writes only once more,
``("lost", reason)``, when the lock key holds another token or has expired (it then stops: it
never extends another holder's lock), or when it could not reach Redis for a whole expiry.
End-of-file on its command pipe (the parent stopped it, or died) ends it; it never releases
the lock itself.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from recommender.lifeline import Child, start_child

log = logging.getLogger(__name__)

# extend the lock, and its holder record, only while it is still ours
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
_PLAIN = (str, bytes, int, float, bool, type(None))
# recommender.featurestore.redisclient's RedisClient, spelled here so that the keeper process
# imports nothing but redis
RedisClient = redis.Redis | RedisCluster


@dataclass(frozen=True)
class KeeperSpec:
    connection_class: str  # "module:qualname" of the client's redis-py connection class
    connection_kwargs: dict[str, Any]
    lock_key: str
    holder_key: str
    seconds: float
    cluster_nodes: tuple[tuple[str, int], ...] = ()  # a Redis Cluster's nodes (seeds)


def spec_for(client: RedisClient, lock_key: str, holder_key: str, seconds: float) -> KeeperSpec:
    """What the keeper needs to open its own connection like ``client``'s (host, port, db,
    credentials, TLS files; callables such as credential providers do not cross processes)."""
    nodes: tuple[tuple[str, int], ...] = ()
    if isinstance(client, RedisCluster):
        source = client.nodes_manager.connection_kwargs
        cls: type = redis.Connection  # unused: the cluster client picks its own
        nodes = tuple((node.host, int(node.port)) for node in client.get_nodes())
    else:
        source = client.connection_pool.connection_kwargs
        cls = client.connection_pool.connection_class
    kwargs = {k: v for k, v in source.items() if isinstance(v, _PLAIN)}
    if nodes:
        kwargs.pop("db", None)  # a cluster has only database 0, and refuses the argument
    # a renewal must not wait on a dead socket for longer than a renewal period
    period = max(1.0, seconds / 3)
    kwargs.update(socket_timeout=period, socket_connect_timeout=period, decode_responses=False)
    return KeeperSpec(
        f"{cls.__module__}:{cls.__qualname__}", kwargs, lock_key, holder_key, seconds, nodes
    )


def _connect(spec: KeeperSpec) -> RedisClient:
    if spec.cluster_nodes:
        seeds = [ClusterNode(host, port) for host, port in spec.cluster_nodes]
        return RedisCluster(startup_nodes=seeds, **spec.connection_kwargs)
    module, _, name = spec.connection_class.partition(":")
    connection_class = getattr(importlib.import_module(module), name)
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=connection_class, **spec.connection_kwargs
        )
    )


class LockKeeper:
    """The parent's side. The process starts at once, before the lock is taken, and the lock
    is taken without waiting for it (a run that finds the lock taken is refused as fast as
    ever); :meth:`start` then waits for it, renewing the lock itself meanwhile, so a slow
    start cannot let even a short lock expire."""

    START_SECONDS = 60.0

    def __init__(self, spec: KeeperSpec) -> None:
        self.spec = spec
        self.child: Child = start_child(__name__, "keep")
        try:
            self.child.send(spec)
        except BaseException:
            self.child.kill()
            raise

    @property
    def pid(self) -> int:
        return self.child.pid

    def start(self, token: bytes, renew: Callable[[], object]) -> None:
        """Wait until the keeper is up, calling ``renew`` every renewal period meanwhile, then
        have it renew the lock held with ``token`` from now on. ``RuntimeError`` when it does
        not start or its first renewal fails."""
        deadline = time.monotonic() + self.START_SECONDS
        while not self.child.poll(self.spec.seconds / 3):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the lock keeper did not start in {self.START_SECONDS:.0f}s")
            renew()
        self._reply("up")
        self.child.send(token)
        timeout = max(5.0, self.spec.seconds)
        if not self.child.poll(timeout):
            raise RuntimeError(f"the lock keeper did not renew the lock within {timeout:.0f}s")
        self._reply("ready")

    def lost(self) -> str | None:
        """Why the lock is lost, if the keeper said so (or died); None while it renews."""
        if not self.child.poll():
            return None
        try:
            kind, detail = self.child.recv()
        except EOFError:
            return f"the lock keeper process exited (status {self.child.proc.wait()})"
        return str(detail) if kind == "lost" else f"unexpected keeper message {kind!r}"

    def stop(self) -> None:
        """End the keeper without touching the lock."""
        self.child.close(timeout=5)

    def kill(self) -> None:
        """End it at once (it has not been handed a lock)."""
        self.child.kill()

    def _reply(self, kind: str) -> None:
        try:
            got, detail = self.child.recv()
        except EOFError:
            raise RuntimeError(
                f"the lock keeper process exited (status {self.child.proc.wait()})"
            ) from None
        if got != kind:
            raise RuntimeError(f"the lock keeper could not keep the lock: {detail}")


def keep(inbox: Connection, outbox: Connection) -> None:
    """The keeper process (started by :class:`LockKeeper` through :mod:`recommender.lifeline`)."""
    spec: KeeperSpec = inbox.recv()
    try:
        client = _connect(spec)  # a cluster client asks a seed for the slot map here
    except (redis.RedisError, RedisClusterException) as exc:
        outbox.send(("down", f"cannot connect: {exc}"))
        return
    outbox.send(("up", None))
    try:
        token = inbox.recv()
    except EOFError:
        return
    ms, period = int(spec.seconds * 1000), spec.seconds / 3
    keys = (spec.lock_key, spec.holder_key)
    renewed, ready = time.monotonic(), False
    while True:
        if ready and _frozen(os.getppid()):
            # a holder stopped by a signal (SIGSTOP, Ctrl-Z) renews nothing, as before there was
            # a keeper: its lock expires, and once it runs again the next renewal finds it lost
            renewed = time.monotonic()
            if inbox.poll(period):
                return
            continue
        try:
            ours = client.eval(_RENEW, 2, *keys, token, ms)
        except (redis.RedisError, RedisClusterException) as exc:  # e.g. no node for the slot
            if time.monotonic() - renewed >= spec.seconds:
                outbox.send(("lost", f"could not renew it for {spec.seconds:.0f}s: {exc}"))
                return
            log.warning("renewing the run lock %s failed, retrying: %s", spec.lock_key, exc)
        else:
            if not ours:
                outbox.send(("lost", "its key holds another run's token or has expired"))
                return
            renewed = time.monotonic()
            if not ready:
                outbox.send(("ready", None))
                ready = True
        if inbox.poll(period):  # a command, or end-of-file: stop
            return


def _frozen(pid: int) -> bool:
    """Whether process ``pid`` is stopped by a signal (state T in /proc; a debugger's tracing
    stop, t, is not: the lock stays while someone steps through the run)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state == b"T"
