"""The dead-letter topic: rejected records, unchanged, with headers that say why.

A record that cannot be processed is never dropped and never stops its
partition: its original key and value bytes go to the dead-letter topic, its
original headers are kept, and ``streamrec.*`` headers add the error and
where the record came from (topic, partition, offset, timestamp, consumer
group), so it can be inspected and replayed.
"""

from __future__ import annotations

import logging
from typing import Any

from consumers.metrics import ServiceMetrics
from consumers.outbox import OutgoingRecord

log = logging.getLogger(__name__)

#: Longest error message kept in a header; the full text is in the log.
MAX_ERROR_MESSAGE_BYTES = 1024

HEADER_PREFIX = "streamrec."


class DeadLetters:
    """Turns a rejected record into a dead letter, and counts it.

    Parameters
    ----------
    topic
        The dead-letter topic.
    group_id
        The consumer group, recorded in a header.
    metrics
        Where ``streamrec_events_invalid_total`` and ``streamrec_dlq_published_total`` live.
    """

    def __init__(self, topic: str, group_id: str, metrics: ServiceMetrics) -> None:
        self.topic = topic
        self.group_id = group_id
        self.metrics = metrics

    def letter(self, record: Any, reason: str, error: BaseException) -> OutgoingRecord:
        """The dead letter of ``record`` (a kafka-python ``ConsumerRecord``)."""
        message = str(error).encode("utf-8", errors="replace")[:MAX_ERROR_MESSAGE_BYTES]
        headers = list(record.headers or [])
        headers += [
            (HEADER_PREFIX + "error.reason", reason.encode()),
            (HEADER_PREFIX + "error.class", type(error).__name__.encode()),
            (HEADER_PREFIX + "error.message", message),
            (HEADER_PREFIX + "source.topic", record.topic.encode()),
            (HEADER_PREFIX + "source.partition", str(record.partition).encode()),
            (HEADER_PREFIX + "source.offset", str(record.offset).encode()),
            (HEADER_PREFIX + "source.timestamp", str(record.timestamp).encode()),
            (HEADER_PREFIX + "consumer.group", self.group_id.encode()),
        ]
        log.warning(
            "dead-lettering %s[%d] offset %d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            message.decode(errors="replace"),
        )
        self.metrics.events_invalid.labels(reason=reason).inc()
        return OutgoingRecord(
            self.topic, record.key, record.value, headers, on_success=self.metrics.dlq_published.inc
        )


def dead_letter_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """The ``streamrec.*`` headers of a dead letter as text, for tools and tests."""
    return {
        name[len(HEADER_PREFIX) :]: value.decode("utf-8", errors="replace")
        for name, value in headers
        if name.startswith(HEADER_PREFIX)
    }
