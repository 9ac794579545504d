"""A client that trickles its request head is disconnected; a normal one is not. A real
uvicorn server (in a thread) with the protocol `reco serve` uses, over a real socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from api import headtimeout
from api.headtimeout import PROTOCOL
from tests.support.repo import free_port


async def _app(scope: dict, receive: object, send: object) -> None:  # a minimal ASGI app
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("RECO_HEADER_TIMEOUT_SECONDS", "0.5")
    headtimeout.head_timeout.cache_clear()
    port = free_port()
    config = uvicorn.Config(_app, port=port, http=PROTOCOL, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)
    headtimeout.head_timeout.cache_clear()


def _closed_after(sock: socket.socket, seconds: float, byte: bytes = b"a") -> bool:
    """Trickle ``byte`` every 0.1 s; True when the server closes the connection."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            sock.sendall(byte)
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset by the server
            return True
    return False


def test_a_trickled_request_head_is_cut_off_a_normal_request_is_served(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        assert _closed_after(sock, 5.0), "a trickling client was never disconnected"
        assert time.monotonic() - t0 < 3.0
    with socket.create_connection(("127.0.0.1", server)) as sock:  # connects, sends nothing
        sock.settimeout(5)
        assert sock.recv(1024) == b""
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        time.sleep(0.8)  # past the head timeout: a served request's connection stays usable
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    # after a served request, blank lines trickled forever (they begin no request) are cut off
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert _closed_after(sock, 5.0, b"\r\n"), "a client trickling blank lines stayed"
        assert time.monotonic() - t0 < 3.0
    # two pipelined requests in one write: both answered
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        got = b""
        while got.count(b"HTTP/1.1 200") < 2:
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
