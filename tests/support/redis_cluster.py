"""A 3-node Redis Cluster of the test's own (no replicas), on free ports: what the platform
meets in the bigger setting (``RECO_REDIS_CLUSTER``, deploy/feast/)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.repo import free_ports


@contextmanager
def redis_cluster(folder: Path, nodes: int = 3) -> Iterator[list[str]]:
    """Start ``nodes`` cluster-enabled redis-servers under ``folder``, join them into one
    cluster (slots spread evenly), yield their ``host:port``s, stop them at the end. Skips the
    test when redis-server / redis-cli are not installed."""
    exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if exe is None or cli is None:
        pytest.skip("redis-server / redis-cli are not installed")
    # client and bus ports, all distinct; the bus port must be given because the default,
    # port + 10000, can exceed 65535
    chosen = free_ports(2 * nodes)
    ports, bus_ports = chosen[:nodes], chosen[nodes:]
    procs = []
    try:
        for port, bus in zip(ports, bus_ports, strict=True):
            node_dir = folder / str(port)
            node_dir.mkdir(parents=True)
            procs.append(
                subprocess.Popen(
                    [
                        exe,
                        "--port",
                        str(port),
                        "--cluster-port",
                        str(bus),
                        "--cluster-enabled",
                        "yes",
                        "--bind",
                        "127.0.0.1",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--dir",
                        str(node_dir),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                )
            )
        for port in ports:  # every node answers before the cluster is formed
            for _ in range(200):
                pong = subprocess.run(
                    [cli, "-p", str(port), "ping"], capture_output=True, text=True
                )
                if pong.stdout.strip() == "PONG":
                    break
                time.sleep(0.1)
        addresses = [f"127.0.0.1:{p}" for p in ports]
        made = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        for port in ports:  # every node must know the whole slot map before clients come
            for _ in range(100):
                info = subprocess.run(
                    [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True
                ).stdout
                if "cluster_state:ok" in info:
                    break
                time.sleep(0.2)
        yield addresses
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
