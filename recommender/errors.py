"""Domain exceptions. Only ``api/`` maps them to HTTP status codes; the CLI maps them to exit 2."""

from __future__ import annotations


class RecoError(Exception):
    """Base class for every error the platform raises on purpose."""


class InvalidDataset(RecoError):
    """Input tables are missing, malformed or have wrongly typed columns."""


class DataNotAvailable(RecoError):
    """A dataset could not be fetched or found (no network, no cache)."""


class ArtifactNotFound(RecoError):
    """No model version exists, or the requested one is missing."""


class CorruptArtifact(RecoError):
    """A model version exists but its files do not match its manifest."""


class UnknownItems(RecoError):
    """Item ids that the model does not know."""

    def __init__(self, item_ids: list[str]) -> None:
        self.item_ids = item_ids
        shown = ", ".join(item_ids[:20]) + (" ..." if len(item_ids) > 20 else "")
        super().__init__(f"unknown item ids: {shown}")


class FeatureRepoNotApplied(RecoError):
    """The Feast registry lacks what serving needs (``feast apply`` has not run)."""


class FeatureStoreUnavailable(RecoError):
    """The Feast online store (Redis) did not answer."""


class InvalidRequest(RecoError):
    """A request asks for something that cannot be served (unknown feature, bad rule)."""


class ModelNotLoaded(RecoError):
    """Serving has no usable model (missing or corrupt at start-up)."""


class NotFound(RecoError):
    """A requested resource (an item) does not exist in the served model."""


class EventLogUnavailable(RecoError):
    """Events could not be written durably; they were not accepted."""


class RunLocked(RecoError):
    """Another nightly run holds the run lock of this project."""


class LockLost(RecoError):
    """A nightly run lost its lock (it expired); it must not publish."""


class MemoryBudgetExceeded(RecoError):
    """A step would need more memory than its budget; the message names the setting to lower."""
