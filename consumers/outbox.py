"""Everything a batch writes (lists, tombstones, dead letters), sent before commit.

A batch's input offsets may only be committed once all of its output is in
Kafka; otherwise a crash would lose what the batch owed. The outbox sends
each record, flushes, and re-sends whatever failed with capped back-off until
it is all acknowledged, or until shutdown is requested, in which case the
batch is reported unsent and is not committed (it will be redelivered).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    on_success: Callable[[], None] | None = None


class Outbox:
    """Collects a batch's records and delivers them all, or reports that it could not.

    Parameters
    ----------
    producer
        The producer the records go through.
    flush_timeout
        Seconds one flush may take before the unacknowledged records are retried.
    on_retry
        Called each time delivery has to be retried (to count broker trouble).
    """

    def __init__(
        self,
        producer: KafkaProducer,
        flush_timeout: float = 30.0,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.producer = producer
        self.flush_timeout = flush_timeout
        self.on_retry = on_retry
        self._pending: list[OutgoingRecord] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, record: OutgoingRecord) -> None:
        self._pending.append(record)

    def take(self) -> list[OutgoingRecord]:
        """Everything queued, leaving the outbox empty (for a transactional send)."""
        pending, self._pending = self._pending, []
        return pending

    def deliver(self, stop: threading.Event) -> bool:
        """Send every pending record; True once all are acknowledged.

        False only if ``stop`` was set before everything was delivered.
        """
        pending, delay = self._pending, 0.5
        self._pending = []
        while pending:
            futures = [self._send(record) for record in pending]
            try:
                self.producer.flush(timeout=self.flush_timeout)
            except KafkaError as exc:
                log.warning("flush did not complete: %s", exc)
            failed = []
            for record, future in zip(pending, futures, strict=True):
                if future is not None and future.is_done and future.succeeded():
                    if record.on_success is not None:
                        record.on_success()
                else:
                    failed.append(record)
            if not failed:
                return True
            if self.on_retry is not None:
                self.on_retry()
            log.warning(
                "%d of %d records not acknowledged; retrying in %.1fs",
                len(failed),
                len(pending),
                delay,
            )
            if stop.wait(delay):
                self._pending = failed
                return False
            pending, delay = failed, min(delay * 2, 15.0)
        return True

    def _send(self, record: OutgoingRecord):  # noqa: ANN202 - kafka-python's future type
        try:
            return self.producer.send(
                record.topic, key=record.key, value=record.value, headers=record.headers
            )
        except KafkaError as exc:
            # send() itself fails when metadata cannot be fetched in max_block_ms.
            log.warning("send to %s failed: %s", record.topic, exc)
            return None
