"""Exceptions raised by the Kafka runtime; all derive from :class:`ConsumersError`."""

from __future__ import annotations


class ConsumersError(Exception):
    """Base class of every error raised by ``consumers``."""


class ConfigError(ConsumersError):
    """Settings that are unknown, malformed or inconsistent with each other."""


class PublishError(ConsumersError):
    """Records could not be written to Kafka; the batch is not committed."""
