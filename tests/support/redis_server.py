"""A redis-server of the test's own on a free port (paused, stopped, restarted at will), so a
test can break Redis without touching the shared one."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.support.repo import free_port


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port, self.directory = free_port(), directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--dbfilename",
                "dump.rdb",
                "--enable-debug-command",
                "local",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def lose_data(self) -> None:
        """A restart without data (no dump): what an unpersisted Redis does after a crash."""
        self.stop()
        (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def stop(self) -> None:  # keeps the data on disk for the restart
        try:
            redis.Redis(port=self.port).shutdown(save=True)
        except redis.ConnectionError:
            pass
        assert self.proc is not None
        self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def pause(self, seconds: float) -> None:
        redis.Redis(port=self.port, socket_timeout=seconds + 5).execute_command(
            "DEBUG", "SLEEP", seconds
        )
