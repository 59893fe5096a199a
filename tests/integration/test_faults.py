"""Fault tests on real Apache Kafka: kill things, then count what arrived where.

Each test prints its figures (events produced, reflected in the model,
learned twice, lost; lists published, duplicated, going backwards) and
asserts the guarantees of docs/reliability.md:

- no event is ever lost, and none is learned twice by the model;
- a user's lists never go backwards (the trigger_event_id oracle) and each
  user's latest list reflects their last event;
- exactly-once publishes no list twice; at-least-once duplicates at most
  what one uncommitted batch held.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient

from consumers.brokers import ApacheKafka

from .faults import (
    FaultReport,
    Worker,
    account,
    create_topics,
    kill_repeatedly,
    numbered_events,
    produce,
    wait_caught_up,
)

pytestmark = [pytest.mark.apache_kafka, pytest.mark.slow]

MAX_BATCH = 1000  # Worker runs with --max-batch 1000


def check(report: FaultReport, capsys: pytest.CaptureFixture, *, batches_at_risk: int) -> None:
    with capsys.disabled():  # the figures belong in every test log, passing or not
        print(f"\n{FaultReport.HEADER}\n{report.row()}")
        for note in report.notes:
            print(f"  note: {note}")
    assert report.never_learned == 0, report
    assert report.learned_twice == 0, report
    assert report.reflected == report.produced, report
    assert report.model_mismatched_users == 0, report
    assert report.backwards == 0, report
    assert report.stale_users == 0, report
    if report.guarantee == "exactly-once":
        assert report.duplicate_lists == 0, report
    else:
        # A batch delivered but not committed when the worker died is published again.
        assert report.duplicate_lists <= batches_at_risk * MAX_BATCH, report


@pytest.fixture
def own_kafka(apache_kafka):  # the shared fixture decides whether Apache Kafka can run here
    with ApacheKafka(nodes=1) as kafka:
        yield kafka


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_worker_killed_five_times_loses_and_repeats_nothing(
    apache_kafka, tmp_path, capsys, guarantee
):
    started = time.monotonic()
    bootstrap = apache_kafka.bootstrap_servers
    prefix = f"kill-{guarantee}-{int(time.time() * 1000) % 10**8}"
    topics = create_topics(bootstrap, prefix, partitions=1, replication=1)
    events = numbered_events()  # all 100,000 MovieLens ratings
    produce(bootstrap, topics["input"], events)
    group = f"g-{prefix}"

    def start() -> Worker:
        return Worker(bootstrap, topics, tmp_path, guarantee, "w1", group)

    last, kills = kill_repeatedly(start, kills=5, every=12_000)
    try:
        wait_caught_up([last], len(events))
        assert last.service.terminate() == 0  # clean stop: final checkpoint
    finally:
        last.__exit__(None, None, None)
    report = FaultReport("worker SIGKILLed 5 times", guarantee, faults=kills)
    account(report, bootstrap, topics, tmp_path / "state", group, events, partitions=1)
    report.seconds = time.monotonic() - started
    check(report, capsys, batches_at_risk=kills)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_broker_restarted_mid_run(own_kafka, tmp_path, capsys, guarantee):
    bootstrap = own_kafka.bootstrap_servers
    prefix = f"bounce-{guarantee}"
    topics = create_topics(bootstrap, prefix, partitions=1, replication=1)
    events = numbered_events(40_000)
    first, second = events[:20_000], events[20_000:]
    group = f"g-{prefix}"
    produce(bootstrap, topics["input"], first)
    worker = Worker(bootstrap, topics, tmp_path, guarantee, "w1", group).__enter__()
    try:
        while worker.consumed() < 10_000:
            time.sleep(0.2)
        own_kafka.stop_node(0)
        time.sleep(6)  # the worker cannot reach the broker; it must wait, not die
        own_kafka.start_node(0)
        # Exactly-once may give up on a transaction it could neither commit nor
        # abort: it exits (code 2) and wait_caught_up restarts it, as a
        # supervisor would; the restart recovers from the checkpoint.
        produce(bootstrap, topics["input"], second)
        wait_caught_up([worker], len(events))
        assert worker.service.terminate() == 0
    finally:
        worker.__exit__(None, None, None)
    report = FaultReport("broker stopped and restarted", guarantee, faults=1)
    account(report, bootstrap, topics, tmp_path / "state", group, events, partitions=1)
    if worker.restarts:
        report.notes.append(f"the worker stopped itself and was restarted {worker.restarts}x")
    check(report, capsys, batches_at_risk=1 + worker.restarts)


@pytest.fixture
def three_nodes(apache_kafka):
    with ApacheKafka(nodes=3) as kafka:  # replication factor 3, min.insync.replicas=2
        yield kafka


def leader_index(kafka: ApacheKafka, topic: str, partition: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        (description,) = admin.describe_topics([topic])
    finally:
        admin.close()
    leader = next(
        p["leader_id"] for p in description["partitions"] if p["partition_index"] == partition
    )
    return next(i for i in range(3) if kafka.node_id(i) == leader)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_partition_leader_killed_in_a_three_node_cluster(three_nodes, tmp_path, capsys, guarantee):
    bootstrap = three_nodes.bootstrap_servers
    prefix = f"leader-{guarantee}"
    topics = create_topics(bootstrap, prefix, partitions=1, replication=3)
    events = numbered_events(40_000)
    produce(bootstrap, topics["input"], events)
    group = f"g-{prefix}"
    worker = Worker(bootstrap, topics, tmp_path, guarantee, "w1", group).__enter__()
    try:
        while worker.consumed() < 10_000:
            time.sleep(0.2)
        killed = leader_index(three_nodes, topics["input"], 0)
        three_nodes.kill_node(killed)  # SIGKILL: no clean leadership handover
        wait_caught_up([worker], len(events))
        assert worker.service.terminate() == 0
    finally:
        worker.__exit__(None, None, None)
    report = FaultReport("input leader SIGKILLed (3 nodes)", guarantee, faults=1)
    account(report, bootstrap, topics, tmp_path / "state", group, events, partitions=1)
    report.notes.append(f"killed node {killed}, the input partition's leader")
    if worker.restarts:
        report.notes.append(f"the worker stopped itself and was restarted {worker.restarts}x")
    check(report, capsys, batches_at_risk=1 + worker.restarts)


def test_two_workers_one_killed_and_a_new_one_joining(apache_kafka, tmp_path, capsys):
    bootstrap = apache_kafka.bootstrap_servers
    prefix = f"group-{int(time.time() * 1000) % 10**8}"
    topics = create_topics(bootstrap, prefix, partitions=4, replication=1)
    events = numbered_events(60_000)
    first, second = events[:30_000], events[30_000:]
    group = f"g-{prefix}"
    produce(bootstrap, topics["input"], first)

    def worker(name: str) -> Worker:
        return Worker(bootstrap, topics, tmp_path, "at-least-once", name, group).__enter__()

    a, b = worker("a"), worker("b")
    c = None
    try:
        while a.consumed() < 5_000 or b.consumed() < 5_000:
            time.sleep(0.2)
        a.kill()  # b must take a's partitions over, with a's checkpointed state
        c = worker("c")  # and a newcomer gets a share, with state restored too
        produce(bootstrap, topics["input"], second)
        wait_caught_up([b, c], len(events))
        assert b.service.terminate() == 0 and c.service.terminate() == 0
    finally:
        for w in (a, b, c):
            if w is not None:
                w.__exit__(None, None, None)
    report = FaultReport("2 workers: one killed, one joins", "at-least-once", faults=1)
    account(report, bootstrap, topics, tmp_path / "state", group, events, partitions=4)
    moved = sum("restored checkpoint" in w.service.log_path.read_text() for w in (b, c))
    report.notes.append(f"{moved} of the surviving/new workers restored a moved partition")
    assert moved >= 1, "no partition state moved to another worker"
    check(report, capsys, batches_at_risk=2)
