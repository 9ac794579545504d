"""The names of the platform's own Redis keys, next to Feast's (pure).

Every key of one project carries the project as a Redis Cluster hash tag,
``reco:{<project>}:<name>``: a cluster keeps them all in one slot, so the Lua scripts that
check the run lock and switch the list pointer, the API's ``MGET`` of its poll keys and any
multi-key transaction work on a cluster exactly as on one Redis. The key functions that name
them live with their users (``live_key`` in :mod:`recommender.batch.publication`,
``serving_key`` in :mod:`recommender.lifecycle.experiments`, ...) and all build on
:func:`project_key`. Until issue 14 the names had no braces (``reco:<project>:<name>``);
:func:`legacy_name` maps them, and ``reco lists migrate-keys`` renames a deployment's keys.
"""

from __future__ import annotations

PREFIX = "reco"


def project_key(project: str, *parts: str) -> str:
    """The key ``parts`` of ``project``, hash-tagged by the project.

    Example: ``project_key("demo", "lists", "live") == "reco:{demo}:lists:live"``
    """
    if not project or "{" in project or "}" in project or not parts:
        raise ValueError(f"a project key needs a project without braces and a name: {project!r}")
    return f"{PREFIX}:{{{project}}}:" + ":".join(parts)


def project_pattern(project: str) -> str:
    """``SCAN MATCH`` pattern of exactly this project's keys (braces are literal in Redis
    patterns, and the pattern ends at the brace after the name, so ``demo`` never matches
    ``demo2``'s keys).

    Example: ``project_pattern("demo") == "reco:{demo}:*"``
    """
    return project_key(project, "*")


def legacy_pattern(project: str) -> str:
    """``SCAN MATCH`` pattern of the project's keys under their names before issue 14."""
    return f"{PREFIX}:{project}:*"


def legacy_name(project: str, key: str) -> str:
    """The pre-issue-14 name of ``key``.

    Example: ``legacy_name("demo", "reco:{demo}:lists:live") == "reco:demo:lists:live"``
    """
    tagged = project_key(project, "")
    if not key.startswith(tagged):
        raise ValueError(f"{key!r} is not a key of project {project!r}")
    return f"{PREFIX}:{project}:" + key[len(tagged) :]
