"""The container healthcheck: exit 0 when the API answers ``/ready`` with 200, else 1.

Kept apart from the CLI on purpose: compose probes every 10 s with a 5 s timeout, and the full
``reco`` CLI imports Feast, pandas and the models (~8 s here), while this module needs only the
standard library and the settings. Compose runs ``python -m jobs.healthcheck``; ``reco
healthcheck`` calls the same :func:`probe`.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from recommender.config import get_settings


def probe(url: str, timeout: float = 3.0) -> str | None:
    """None when ``url`` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return None if response.status == 200 else f"status {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)


def default_url() -> str:
    return f"http://127.0.0.1:{get_settings().api.port}/ready"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.healthcheck", description=__doc__)
    parser.add_argument("--url", help="Default: http://127.0.0.1:RECO_PORT/ready")
    parser.add_argument("--timeout", type=float, default=3.0, help="Seconds.")
    args = parser.parse_args(argv)
    target = args.url or default_url()
    problem = probe(target, args.timeout)
    if problem is not None:
        print(f"unhealthy: {target}: {problem}", file=sys.stderr)  # noqa: T201 - a CLI's output
        return 1
    print("ok")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
