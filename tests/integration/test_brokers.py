"""Start each kind of broker for real and round-trip records through it."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from consumers.brokers import ApacheKafka, new_cluster_id

from ..conftest import require_apache

N_RECORDS = 10


def _create_topic(bootstrap: str, topic: str, replication_factor: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {topic: {"num_partitions": 1, "replication_factor": replication_factor}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10)
    try:
        for value in values:
            producer.send(topic, value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def _consume(bootstrap: str, topic: str, group: str, n: int, timeout: float = 60.0) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        consumer.commit()
    finally:
        consumer.close()
    return got


def _round_trip(bootstrap: str, topic: str, replication_factor: int = 1) -> None:
    _create_topic(bootstrap, topic, replication_factor)
    values = [f"msg-{i}".encode() for i in range(N_RECORDS)]
    _produce(bootstrap, topic, values)
    assert _consume(bootstrap, topic, f"{topic}-group", N_RECORDS) == values


def test_cluster_id_format() -> None:
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-") and "=" not in cid


@pytest.mark.kafka
def test_embedded_broker_round_trip(embedded_broker, unique_topic) -> None:
    assert embedded_broker.kind == "embedded"
    assert embedded_broker.is_alive()
    _round_trip(embedded_broker.bootstrap_servers, unique_topic("rt"))


@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_apache_kafka_round_trip(apache_kafka, unique_topic) -> None:
    assert apache_kafka.kind == "apache"
    assert apache_kafka.log_path(0).is_file()
    _round_trip(apache_kafka.bootstrap_servers, unique_topic("rt"))


@pytest.mark.kafka
def test_kafka_broker_fixture_round_trip(kafka_broker, unique_topic) -> None:
    assert kafka_broker.kind in ("apache", "embedded")
    _round_trip(kafka_broker.bootstrap_servers, unique_topic("rt"))


def _describe_partition(bootstrap: str, topic: str) -> dict:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (desc,) = admin.describe_topics([topic])
    finally:
        admin.close()
    (partition,) = desc["partitions"]
    return partition


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_three_node_cluster_survives_node_loss(unique_topic) -> None:
    require_apache()
    with ApacheKafka(nodes=3) as cluster:
        assert len(cluster.bootstrap_servers.split(",")) == 3
        topic = unique_topic("replicated")
        _create_topic(cluster.bootstrap_servers, topic, replication_factor=3)

        partition = _describe_partition(cluster.bootstrap_servers, topic)
        assert sorted(partition["replica_nodes"]) == [1, 2, 3]

        # Kill the partition leader: the hardest case (leader election needed;
        # it may also be the active controller).
        leader_index = partition["leader_id"] - 1
        cluster.kill_node(leader_index)
        assert not cluster.is_alive(leader_index)

        # acks=all with min.insync.replicas=2 still succeeds with 2 of 3 alive.
        values = [f"after-kill-{i}".encode() for i in range(N_RECORDS)]
        _produce(cluster.bootstrap_servers, topic, values)
        assert _consume(cluster.bootstrap_servers, topic, f"{topic}-g1", N_RECORDS) == values

        # The node comes back on the same ports and data dir and rejoins.
        cluster.start_node(leader_index)
        assert cluster.is_alive()
        deadline = time.monotonic() + 60
        while len(_describe_partition(cluster.bootstrap_servers, topic)["isr_nodes"]) < 3:
            assert time.monotonic() < deadline, "restarted node did not rejoin the ISR"
            time.sleep(0.5)
