"""Start-up against a real broker: a worker started before its input topic exists.

With ``--create-topics false`` the operator creates the topics. A worker that
starts first must say what it waits for, keep waiting (not exit, not spin
silently), and consume from the first event once the topic appears. Before
its first poll it has the topic's partitions in its own metadata, so that the
group leader never assigns from an empty view (see
``consumers.clients.input_partitions``).
"""

from __future__ import annotations

import time
import uuid

import msgpack
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from .faults import TOPIC_NAMES, numbered_events, produce
from .service_process import ServiceProcess, read_topic, wait_until

pytestmark = [pytest.mark.kafka]


def test_worker_waits_for_its_input_topic_then_consumes_it_all(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    prefix = f"late-{uuid.uuid4().hex[:8]}"
    topics = {name: f"{prefix}-{name}" for name in TOPIC_NAMES}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topics[name], 1, 1) for name in TOPIC_NAMES if name != "input"]
        )
        with ServiceProcess(bootstrap, topics, tmp_path, "--create-topics", "false") as service:
            waiting = f"reading the partitions of {topics['input']} failed"
            wait_until(lambda: waiting in service.log_tail(200), 60, "the wait logged", service)
            time.sleep(1.0)  # a back-off or two: still waiting, still alive
            assert service.process is not None and service.process.poll() is None

            admin.create_topics([NewTopic(topics["input"], 1, 1)])
            events = numbered_events(300)
            produce(bootstrap, topics["input"], events)
            wait_until(
                lambda: service.total("streamrec_events_consumed_total") >= len(events),
                120,
                "every event consumed",
                service,
            )
            assert service.terminate() == 0
    finally:
        admin.close()

    published = [
        msgpack.unpackb(r.value, raw=False) for r in read_topic(bootstrap, topics["output"])
    ]
    assert {rec["user_id"] for rec in published} == {e.user_id for e in events}
    assert "assigned nothing" not in service.log_tail(400)
