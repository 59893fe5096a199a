"""The right to be forgotten, end to end on a real broker.

After a ``forget_user`` event, nothing about the user may remain: not in
the running model, not in any checkpoint written afterwards, and not in
``recommendations`` beyond the null tombstone once Kafka has compacted it.
The user id is chosen so that it cannot occur by accident, and each place
is searched for it byte for byte.
"""

from __future__ import annotations

import time

import msgpack
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from consumers.checkpoint import CheckpointStore
from stream.events import Event

from .service_process import TEST_KEY, ServiceProcess, read_topic, wait_until

pytestmark = [pytest.mark.apache_kafka, pytest.mark.slow]

FORGOTTEN = "forget-me-7f3a9c"


def stream(n_users: int = 30, per_user: int = 20) -> list[Event]:
    events = []
    for step in range(per_user):
        for user in range(n_users):
            user_id = FORGOTTEN if user == 0 else f"keep-{user}"
            item = f"item-{(user * 7 + step * 3) % 50}"
            events.append(Event(user_id, item, "click", 1_700_000_000.0 + len(events)))
    return events


def test_forget_user_leaves_only_a_tombstone(apache_kafka, tmp_path):
    bootstrap = apache_kafka.bootstrap_servers
    topics = {name: f"forget-{name}" for name in ("input", "catalog", "profiles", "output", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    # Compaction made eager, so the test can watch the old lists disappear.
    eager = {
        "cleanup.policy": "compact",
        "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.001",
        "delete.retention.ms": "600000",
        "min.compaction.lag.ms": "0",
    }
    admin.create_topics([NewTopic(topics["output"], 1, 1, topic_configs=eager)])
    admin.close()
    events = stream()
    before, after = events[: len(events) // 2], events[len(events) // 2 :]
    after = [e for e in after if e.user_id != FORGOTTEN]
    forget = Event(FORGOTTEN, None, "forget_user", after[0].timestamp - 0.5)
    state_dir = tmp_path / "state"
    group = "g-forget"

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def send(batch):
        for event in batch:
            value = msgpack.packb(event.to_dict(), use_bin_type=True)
            producer.send(topics["input"], key=event.user_id.encode(), value=value)
        producer.flush()

    with ServiceProcess(
        bootstrap, topics, tmp_path, "--checkpoint-interval-s", "0", group_id=group,
        state_dir=state_dir,
    ) as service:  # fmt: skip
        send(before)
        wait_until(lambda: service.total("streamrec_events_consumed_total") >= len(before),
                   120, "the first half", service)  # fmt: skip
        checkpoint = CheckpointStore(state_dir, group, TEST_KEY.encode()).path(
            TopicPartition(topics["input"], 0)
        )
        wait_until(checkpoint.exists, 60, "a checkpoint", service)
        assert FORGOTTEN.encode() in checkpoint.read_bytes()  # the search can find them
        send([forget, *after])
        total = len(before) + 1 + len(after)
        wait_until(lambda: service.total("streamrec_events_consumed_total") >= total,
                   120, "the forget and the second half", service)  # fmt: skip
        time.sleep(2)  # the batch's checkpoint
        assert service.terminate() == 0
    producer.close()

    # Memory and checkpoints: the model the service ended with holds no trace.
    data = checkpoint.read_bytes()
    assert FORGOTTEN.encode() not in data, "the forgotten user is still in the checkpoint"
    restored = CheckpointStore(state_dir, group, TEST_KEY.encode()).load(
        TopicPartition(topics["input"], 0)
    )
    assert restored is not None and restored.ledger.learned == total
    assert (
        restored.model.recommend([FORGOTTEN], 5)[0]
        == restored.model.recommend(["never-seen-anyone"], 5)[0]
    )  # ranked like a stranger: no history, no vectors
    assert restored.model.n_users == 29

    # recommendations: once compacted, only the tombstone is left for the user.
    # The cleaner never touches the active segment, so keep rolling it with
    # records of an unrelated key until the tombstone sits in a closed one.
    roller = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def only_tombstone_left() -> bool:
        roller.send(topics["output"], key=b"segment-roller", value=b"-")
        roller.flush()
        mine = [r for r in read_topic(bootstrap, topics["output"]) if r.key == FORGOTTEN.encode()]
        return len(mine) == 1 and mine[0].value is None

    try:
        wait_until(only_tombstone_left, 180, "compaction to leave only the tombstone")
    finally:
        roller.close()
    lists = {
        r.key
        for r in read_topic(bootstrap, topics["output"])
        if r.value is not None and r.key != b"segment-roller"
    }
    assert len(lists) == 29  # everyone else still has their list
