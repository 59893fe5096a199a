"""Exceptions raised by the learning core.

Every error of the ``stream`` package derives from :class:`StreamError`, so a
caller can catch the package's failures in one clause and let real bugs
(``TypeError`` in our own code, say) surface.
"""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every error raised by ``stream``."""


class InvalidRecord(StreamError):
    """A record from outside (event, catalog item, profile) that breaks the contract.

    Parameters
    ----------
    reason
        A short, bounded label (it becomes a Prometheus label value and a
        dead-letter header): ``not_msgpack``, ``missing_field``, ...
    message
        A human-readable explanation naming the offending field.
    """

    #: Every reason the validators can give; metrics labels come from this set only.
    REASONS = (
        "too_large",
        "not_msgpack",
        "not_a_map",
        "missing_field",
        "wrong_type",
        "unknown_event_type",
        "non_finite",
        "string_too_long",
        "out_of_range",
        "key_mismatch",
    )

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown invalid-record reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message


class DatasetError(StreamError):
    """A dataset could not be fetched, verified or parsed."""


class SnapshotError(StreamError):
    """A model snapshot is missing, corrupt or failed authentication."""
