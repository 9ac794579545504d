"""wrk on loopback: closed-loop (maximum throughput) and paced (a target request rate) runs."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

PACED = """
local per_conn_ms = {delay_ms}
function delay() return per_conn_ms end
"""


def _to_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def run(
    url: str,
    lua: str = "",
    duration: int = 10,
    connections: int = 8,
    rate: float | None = None,
) -> dict[str, float]:
    """One wrk run; with ``rate`` each connection waits so the total is about ``rate`` req/s."""
    if rate:
        lua += PACED.format(delay_ms=max(0.0, 1000.0 * connections / rate))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
    if lua:
        cmd += ["-s", fh.name]
    try:
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(fh.name)
    pct = dict(re.findall(r"^\s+(50|90|99)(?:\.0+)?%\s+(\S+)", out, re.M))
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50_ms": _to_ms(pct["50"]),
        "p90_ms": _to_ms(pct["90"]),
        "p99_ms": _to_ms(pct["99"]),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }
