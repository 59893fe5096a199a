"""The catalog and profile topics: read whole by every worker, like a table.

Item features and user profiles are global: a worker needs every item's
features whichever event partitions it owns. So these compacted topics are
read outside the consumer group, from the beginning, by each worker: first to
the end before any event is processed (so the first ranking already knows the
catalog), then a little on every loop turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition

from stream.errors import InvalidRecord
from stream.events import Item, UserProfile, decode_item, decode_profile

log = logging.getLogger(__name__)


class CatalogSink(Protocol):
    """Where catalog and profile records go (a model, or every partition's model)."""

    def add_item(self, item: Item) -> None: ...

    def withdraw_item(self, item_id: str) -> None: ...

    def add_profile(self, profile: UserProfile) -> None: ...


class SideTopicReader:
    """Applies catalog items, withdrawals and profiles to the model.

    Parameters
    ----------
    consumer
        A consumer outside any group (``group_id=None``).
    catalog_topic, profile_topic
        The topics to read; one that does not exist is skipped with a log line.
    model
        Where items and profiles go (see :class:`CatalogSink`).
    reject
        Called with a bad record, its reason and the error; it must keep the
        record (the service dead-letters it).
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        catalog_topic: str,
        profile_topic: str,
        model: CatalogSink,
        reject: Callable[[object, str, Exception], None],
    ) -> None:
        self.consumer = consumer
        self.catalog_topic = catalog_topic
        self.profile_topic = profile_topic
        self.model = model
        self.reject = reject
        self.applied = 0
        partitions = []
        for topic in (catalog_topic, profile_topic):
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, p))
        self.partitions = partitions
        if partitions:
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)

    def catch_up(self, timeout: float = 60.0) -> int:
        """Read to the current end of the side topics; returns the records applied."""
        if not self.partitions:
            return 0
        ends = self.consumer.end_offsets(self.partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.consumer.position(tp) >= end for tp, end in ends.items()):
                break
            self.poll(timeout_ms=200)
        else:
            log.warning("catalog/profiles not fully read after %.0fs; continuing", timeout)
        log.info("side topics read: %d records applied", self.applied)
        return self.applied

    def poll(self, timeout_ms: int = 0) -> int:
        if not self.partitions:
            return 0
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        count = 0
        for records in batch.values():
            for record in records:
                self._apply(record)
                count += 1
        return count

    def _apply(self, record) -> None:  # noqa: ANN001 - kafka-python ConsumerRecord
        try:
            if record.topic == self.catalog_topic:
                if record.value is None:
                    if record.key:
                        self.model.withdraw_item(record.key.decode("utf-8", errors="replace"))
                else:
                    self.model.add_item(decode_item(record.value, record.key))
            elif record.value is not None:
                self.model.add_profile(decode_profile(record.value, record.key))
            self.applied += 1
        except InvalidRecord as exc:
            self.reject(record, exc.reason, exc)
