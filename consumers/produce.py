"""Replay a dataset into Kafka: the catalog and profiles first, then the events.

Events are keyed by user (the contract), so each user's events stay in
order on one partition. ``rate`` paces the replay in events per second, which
turns a historical dataset into a live-looking stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaProducer

from stream.events import Event, encode_event, encode_item, encode_profile

log = logging.getLogger(__name__)


@dataclass
class ProduceStats:
    events: int = 0
    items: int = 0
    profiles: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def make_replay_producer(bootstrap_servers: str, **config: object) -> KafkaProducer:
    """A producer tuned for replay throughput (bigger batches, short linger)."""
    return KafkaProducer(
        bootstrap_servers=[s.strip() for s in bootstrap_servers.split(",")],
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
        **config,
    )


def produce_dataset(
    producer: KafkaProducer,
    dataset,  # noqa: ANN001 - stream.datasets.Dataset
    *,
    events_topic: str = "user-events",
    catalog_topic: str | None = "item-catalog",
    profile_topic: str | None = "user-profiles",
    rate: float | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[ProduceStats], None] | None = None,
    extra_records: Iterable[tuple[int, bytes | None, bytes | None]] = (),
) -> ProduceStats:
    """Write ``dataset`` to Kafka; returns counts and the time it took.

    Parameters
    ----------
    rate
        Events per second; None replays as fast as the producer goes.
    limit
        Stop after this many events.
    extra_records
        ``(position, key, value)`` raw records to interleave into the event
        topic before the event at ``position`` (used to inject malformed
        records in tests and benchmarks).
    """
    stats = ProduceStats()
    started = time.monotonic()
    if catalog_topic:
        for item in dataset.items:
            producer.send(catalog_topic, key=item.item_id.encode(), value=encode_item(item))
            stats.items += 1
    if profile_topic:
        for profile in dataset.profiles:
            producer.send(
                profile_topic, key=profile.user_id.encode(), value=encode_profile(profile)
            )
            stats.profiles += 1
    producer.flush()
    extras = sorted(extra_records, key=lambda entry: entry[0])
    next_extra = 0
    events: list[Event] = dataset.events if limit is None else dataset.events[:limit]
    replay_started = time.monotonic()
    for position, event in enumerate(events):
        if stop is not None and stop.is_set():
            break
        while next_extra < len(extras) and extras[next_extra][0] <= position:
            _, key, value = extras[next_extra]
            producer.send(events_topic, key=key, value=value)
            next_extra += 1
        producer.send(events_topic, key=event.user_id.encode(), value=encode_event(event))
        stats.events += 1
        if rate:
            ahead = stats.events / rate - (time.monotonic() - replay_started)
            if ahead > 0.005:
                time.sleep(ahead)
        if progress is not None and stats.events % 5000 == 0:
            stats.seconds = time.monotonic() - started
            progress(stats)
    for _, key, value in extras[next_extra:]:
        producer.send(events_topic, key=key, value=value)
    producer.flush()
    stats.seconds = time.monotonic() - started
    return stats
