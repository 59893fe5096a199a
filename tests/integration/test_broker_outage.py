"""A broker that goes away is waited for, not a crash; nothing accepted is lost.

The real service runs against its own single-node Apache Kafka. Half the
events go in; the broker is stopped for a while (the service must stay up);
the broker comes back on the same ports and data; the other half goes in.
Every event must be learned and every user must get a list.
"""

from __future__ import annotations

import time

import msgpack
import pytest

from consumers.brokers import ApacheKafka
from stream.datasets.synthetic import generate_synthetic

from .service_process import ServiceProcess, read_topic, replay_and_wait

pytestmark = [pytest.mark.apache_kafka, pytest.mark.slow]


@pytest.fixture
def own_kafka(apache_kafka):  # the shared fixture decides whether Apache Kafka can run here
    with ApacheKafka(nodes=1) as kafka:
        yield kafka


def test_service_survives_the_broker_going_away(own_kafka, tmp_path):
    data = generate_synthetic(n_users=200, n_items=100, n_events=4000, seed=3)
    first, second = data.events[:2000], data.events[2000:]
    topics = {name: f"outage-{name}" for name in ("input", "catalog", "profiles", "output", "dlq")}
    bootstrap = own_kafka.bootstrap_servers

    with ServiceProcess(bootstrap, topics, tmp_path) as service:
        replay_and_wait(service, data, events=first, timeout=120, what="the first half")
        own_kafka.stop_node(0)
        time.sleep(8)  # the service polls, fails to reach the broker, backs off
        assert service.process.poll() is None, service.log_tail()
        own_kafka.start_node(0)
        replay_and_wait(
            service,
            data,
            events=second,
            until=len(data.events),
            timeout=180,
            what="the second half",
        )
        assert service.total("streamrec_events_consumed_total") >= len(data.events)
        assert service.terminate() == 0

    latest = {}
    for record in read_topic(bootstrap, topics["output"]):
        latest[record.key.decode()] = record.value
    users = {e.user_id for e in data.events if e.event_type != "forget_user"}
    assert users <= set(latest)
    last_trigger = {}
    for event in data.events:
        last_trigger[event.user_id] = event.event_id
    for user in users:
        assert msgpack.unpackb(latest[user])["trigger_event_id"] == last_trigger[user]
