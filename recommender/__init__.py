"""The recommender library, one stage package per step of the data's life: data -> featurestore
-> models -> training -> batch -> serving, with events, lifecycle and evaluation beside them.
``jobs/`` (the CLI) and ``api/`` (HTTP) are thin shells over it and import nothing of each other.

Importing this package first makes Feast's import ~7 s shorter: Feast decorates its classes
with typeguard's ``@typechecked``, which re-parses and recompiles every method's source at
import time (agronholm/typeguard#468) and wraps every call in run-time checks. The decorator is
made the no-op it already is under ``python -O`` before Feast is imported; the same static
types are checked by mypy here. ``RECO_FEAST_TYPECHECKS=1`` keeps Feast's run-time checks.
"""

import os
from collections.abc import Callable
from typing import Any

import typeguard

__version__ = "0.1.0"


def _unchecked(target: Any = None, **_options: Any) -> Any:
    """``typeguard.typechecked`` as under ``python -O``: the target itself."""
    if target is None:
        return _unchecked
    return target


_typechecked: Callable[..., Any] = _unchecked
if os.environ.get("RECO_FEAST_TYPECHECKS", "") not in ("1", "true", "True"):
    typeguard.typechecked = _typechecked
