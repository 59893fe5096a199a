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

from .faults import FaultReport, FaultRun, Worker, kill_repeatedly, numbered_events, run_scenario

pytestmark = [pytest.mark.apache_kafka, pytest.mark.slow]

MAX_BATCH = 1000  # Worker runs with --max-batch 1000
KILLS = 5


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


def note_restarts(report: FaultReport, worker: Worker) -> None:
    if worker.restarts:
        report.notes.append(f"the worker stopped itself and was restarted {worker.restarts}x")


@pytest.fixture
def own_kafka(apache_kafka):  # the shared fixture decides whether Apache Kafka can run here
    with ApacheKafka(nodes=1) as kafka:
        yield kafka


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_worker_killed_five_times_loses_and_repeats_nothing(
    apache_kafka, tmp_path, capsys, guarantee
):
    prefix = f"kill-{guarantee}-{int(time.time() * 1000) % 10**8}"
    events = numbered_events()  # all 100,000 MovieLens ratings
    run = FaultRun.create(apache_kafka.bootstrap_servers, tmp_path, prefix, guarantee, events)
    run.produce(events)

    def kill_five_times(workers: list[Worker]) -> list[Worker]:
        last, _ = kill_repeatedly(lambda: run.worker("w1"), kills=KILLS, every=12_000)
        workers.append(last)
        return [last]

    report, _ = run_scenario(
        run, "worker SIGKILLed 5 times", start=(), progress=0, fault=kill_five_times, faults=KILLS
    )
    check(report, capsys, batches_at_risk=KILLS)


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_broker_restarted_mid_run(own_kafka, tmp_path, capsys, guarantee):
    events = numbered_events(40_000)
    run = FaultRun.create(
        own_kafka.bootstrap_servers, tmp_path, f"bounce-{guarantee}", guarantee, events
    )
    first, second = events[:20_000], events[20_000:]
    run.produce(first)

    def bounce_the_broker(workers: list[Worker]) -> list[Worker]:
        own_kafka.stop_node(0)
        time.sleep(6)  # the worker cannot reach the broker; it must wait, not die
        own_kafka.start_node(0)
        # Exactly-once may give up on a transaction it could neither commit nor
        # abort: it exits (code 2) and wait_caught_up restarts it, as a
        # supervisor would; the restart recovers from the checkpoint.
        run.produce(second)
        return workers

    report, (worker,) = run_scenario(
        run, "broker stopped and restarted", start=["w1"], progress=10_000, fault=bounce_the_broker
    )
    note_restarts(report, worker)
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
    events = numbered_events(40_000)
    run = FaultRun.create(
        three_nodes.bootstrap_servers,
        tmp_path,
        f"leader-{guarantee}",
        guarantee,
        events,
        replication=3,
    )
    run.produce(events)
    killed = -1

    def kill_the_leader(workers: list[Worker]) -> list[Worker]:
        nonlocal killed
        killed = leader_index(three_nodes, run.topics["input"], 0)
        three_nodes.kill_node(killed)  # SIGKILL: no clean leadership handover
        return workers

    report, (worker,) = run_scenario(
        run,
        "input leader SIGKILLed (3 nodes)",
        start=["w1"],
        progress=10_000,
        fault=kill_the_leader,
    )
    report.notes.append(f"killed node {killed}, the input partition's leader")
    note_restarts(report, worker)
    check(report, capsys, batches_at_risk=1 + worker.restarts)


def test_two_workers_one_killed_and_a_new_one_joining(apache_kafka, tmp_path, capsys):
    prefix = f"group-{int(time.time() * 1000) % 10**8}"
    events = numbered_events(60_000)
    run = FaultRun.create(
        apache_kafka.bootstrap_servers, tmp_path, prefix, "at-least-once", events, partitions=4
    )
    first, second = events[:30_000], events[30_000:]
    run.produce(first)

    def kill_one_and_add_one(workers: list[Worker]) -> list[Worker]:
        a, b = workers
        a.kill()  # b must take a's partitions over, with a's checkpointed state
        c = run.worker("c").__enter__()  # and a newcomer gets a share, with state restored too
        workers.append(c)
        run.produce(second)
        return [b, c]

    report, carried_on = run_scenario(
        run,
        "2 workers: one killed, one joins",
        start=["a", "b"],
        progress=5_000,
        fault=kill_one_and_add_one,
    )
    moved = sum("restored checkpoint" in w.service.log_path.read_text() for w in carried_on)
    report.notes.append(f"{moved} of the surviving/new workers restored a moved partition")
    assert moved >= 1, "no partition state moved to another worker"
    check(report, capsys, batches_at_risk=2)
