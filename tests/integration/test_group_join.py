"""The guards of consumers/group_join.py against the installed kafka-python and a real broker.

The test drives one consumer into the stranded state on purpose: the lost
metadata update (bug 1) gives an empty first assignment, then a rejoin is
started by a ``poll`` with no time left, so it finishes in the I/O thread,
unseen (bug 2). Without :func:`rejoin_if_stranded` that consumer would
stay without partitions for good; with it, the partition arrives within a
poll or two. If a kafka-python release stops stranding the join, the
precondition fails and says so: the guard can then go.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from consumers.clients import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS
from consumers.group_join import rejoin_if_stranded

pytestmark = [pytest.mark.kafka]


class _Assignments(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.seen: list[set[TopicPartition]] = []

    def on_partitions_revoked(self, revoked) -> None:
        pass

    def on_partitions_assigned(self, assigned) -> None:
        self.seen.append(set(assigned))


def _strand(consumer: KafkaConsumer, assignments: _Assignments) -> None:
    """Empty first assignment, then a rejoin left to finish in the background."""
    cluster = consumer._cluster
    with cluster._lock:  # the metadata update subscribe() asked for is lost (bug 1)
        cluster._need_update = False
    cluster._partitions.clear()
    deadline = time.monotonic() + 30
    while not assignments.seen:
        assert time.monotonic() < deadline, "no first assignment in 30 s"
        consumer.poll(timeout_ms=30)
    assert assignments.seen == [set()], "the first assignment was not the empty one"
    time.sleep(0.3)  # the leader's metadata refresh arrives: a rejoin is due
    consumer.poll(timeout_ms=1)  # which starts, and is left in flight
    time.sleep(0.2)  # and finishes in the I/O thread while the app works


def test_a_stranded_join_is_rejoined_and_the_partition_assigned(kafka_broker):
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"join-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    assignments = _Assignments()
    try:
        consumer.subscribe([topic], listener=assignments)
        _strand(consumer, assignments)
        coordinator = consumer._coordinator
        stranded = coordinator._join_task is not None and coordinator._join_task.is_done
        assert stranded and not coordinator.need_rejoin(), (
            "this kafka-python no longer strands a finished join: "
            "consumers/group_join.rejoin_if_stranded may be removable"
        )

        rejoined = rejoin_if_stranded(consumer)
        deadline = time.monotonic() + 30
        while consumer.assignment() != {TopicPartition(topic, 0)}:
            assert time.monotonic() < deadline, f"no partition 30 s after: {assignments.seen}"
            consumer.poll(timeout_ms=500)
            rejoin_if_stranded(consumer)
        assert rejoined
        assert assignments.seen[-1] == {TopicPartition(topic, 0)}
        assert not rejoin_if_stranded(consumer)  # a settled consumer is left alone
    finally:
        consumer.close(autocommit=False)
