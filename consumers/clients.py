"""A thin layer over kafka-python: clients built from settings, topics, back-off.

Nothing here knows about recommendations. It makes the consumer, producer
and admin client with the service's settings, creates missing topics, and
waits for a cluster that is not there yet (with logged, capped back-off)
instead of crashing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from consumers.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Consumer-group timeouts: short enough that a group forms in ~3 s and a
#: dead worker's partitions move within seconds, long enough for a batch.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000
#: A batch (learn + rank + publish) must finish well within this.
MAX_POLL_INTERVAL_MS = 300_000


def with_backoff(
    what: str,
    attempt: Callable[[], T],
    stop: threading.Event,
    *,
    initial: float = 0.5,
    cap: float = 15.0,
    on_retry: Callable[[], None] | None = None,
) -> T | None:
    """Call ``attempt`` until it succeeds, sleeping with capped exponential back-off.

    Returns None if ``stop`` is set while waiting (shutdown was requested).
    """
    delay = initial
    tries = 0
    while not stop.is_set():
        try:
            return attempt()
        except (KafkaError, OSError) as exc:
            tries += 1
            if on_retry is not None:
                on_retry()
            log.warning(
                "%s failed (try %d: %s: %s); retrying in %.1fs",
                what,
                tries,
                type(exc).__name__,
                exc,
                delay,
            )
            stop.wait(delay)
            delay = min(cap, delay * 2)
    return None


def make_consumer(settings: Settings, **overrides: Any) -> KafkaConsumer:
    config = dict(
        settings.kafka_client_config(),
        group_id=settings.group_id,
        enable_auto_commit=False,  # offsets are committed after publish: at-least-once
        auto_offset_reset="earliest",
        max_poll_records=settings.max_batch,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        client_id=f"streamrec-{settings.group_id}",
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def make_reader(settings: Settings) -> KafkaConsumer:
    """A consumer outside any group, for side topics every worker reads whole."""
    return KafkaConsumer(
        **settings.kafka_client_config(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="streamrec-side-reader",
    )


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config = dict(
        settings.kafka_client_config(),
        acks="all",  # a record counts as published once the in-sync replicas have it
        linger_ms=20,
        retries=5,
        max_block_ms=30_000,
        client_id=f"streamrec-{settings.group_id}-producer",
    )
    config.update(overrides)
    return KafkaProducer(**config)


def make_admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(**settings.kafka_client_config(), client_id="streamrec-admin")


def topic_specs(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the service uses, with its cleanup policy (the contract's table)."""
    return {
        settings.input_topic: {"cleanup.policy": "delete"},
        settings.catalog_topic: {"cleanup.policy": "compact"},
        settings.profile_topic: {"cleanup.policy": "compact"},
        settings.output_topic: {"cleanup.policy": "compact"},
        settings.dlq_topic: {"cleanup.policy": "delete"},
    }


def ensure_topics(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """Create the service's topics that are missing; returns the names created."""
    existing = set(admin.list_topics())
    brokers = len(admin.describe_cluster().get("brokers", [])) or 1
    replication = settings.replication_factor or min(3, brokers)
    missing = [
        NewTopic(
            name,
            num_partitions=settings.partitions,
            replication_factor=replication,
            topic_configs=configs,
        )
        for name, configs in topic_specs(settings).items()
        if name not in existing
    ]
    created = []
    for topic in missing:
        try:
            admin.create_topics([topic])
            created.append(topic.name)
        except TopicAlreadyExistsError:
            pass  # another worker created it first
    if created:
        log.info(
            "created topics %s (partitions=%d, replication=%d)",
            created,
            settings.partitions,
            replication,
        )
    return created


def wait_for_topics(consumer: KafkaConsumer, topics: list[str], timeout: float = 30.0) -> None:
    """Block until the consumer's metadata knows ``topics`` (fresh topics take a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(consumer.partitions_for_topic(t) for t in topics):
            return
        time.sleep(0.2)
    raise TimeoutError(f"topics {topics} did not appear within {timeout:.0f}s")
