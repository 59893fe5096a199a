"""Fault runs: real workers and a real broker, things killed, and everything counted.

A run produces a stream of ratings whose ``event_id`` is ``"<user>#<n>"`` (the
user's n-th event), lets one or more ``streamrec run`` workers process it
while something is killed, stops the last worker cleanly, and then counts:

- from the final checkpoints (the model and the :class:`OffsetLedger` saved
  with it): events reflected in the model, learned twice, or never learned;
- from the model itself: events per user, against what was produced;
- from the ``recommendations`` topic (``read_committed`` for exactly-once):
  lists published, lists published twice for the same trigger, lists whose
  trigger went backwards for their user, and users whose latest list is not
  triggered by their last event.

Used by tests/integration/test_faults.py (which asserts) and by
bench/fault_runs.py (which prints the table).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from consumers.checkpoint import CheckpointStore
from stream.datasets import load_dataset
from stream.events import Event

from .service_process import TEST_KEY, ServiceProcess, wait_until

TOPIC_NAMES = ("input", "catalog", "profiles", "output", "dlq")


@dataclass
class FaultReport:
    """What arrived where, after a fault run."""

    scenario: str
    guarantee: str
    produced: int = 0
    reflected: int = 0  # events folded into the final checkpoints' models
    learned_twice: int = 0
    never_learned: int = 0
    model_mismatched_users: int = 0  # users whose event count in the model differs
    lists: int = 0
    duplicate_lists: int = 0  # (user, trigger) published more than once
    backwards: int = 0  # a user's list triggered by an older event than the one before
    stale_users: int = 0  # latest list not triggered by the user's last event
    faults: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    HEADER = (
        f"{'scenario':34} {'guarantee':13} {'faults':>6} {'produced':>9} {'reflected':>9} "
        f"{'twice':>6} {'lost':>5} {'lists':>7} {'dup lists':>9} {'backwards':>9} {'stale':>5}"
    )

    def row(self) -> str:
        return (
            f"{self.scenario:34} {self.guarantee:13} {self.faults:>6} {self.produced:>9,} "
            f"{self.reflected:>9,} {self.learned_twice:>6} {self.never_learned:>5} "
            f"{self.lists:>7,} {self.duplicate_lists:>9,} {self.backwards:>9} "
            f"{self.stale_users:>5}"
        )


# ------------------------------------------------------------------ the stream


def numbered_events(limit: int | None = None) -> list[Event]:
    """MovieLens-100K ratings (time order), each with event_id ``"<user>#<n>"``."""
    events = load_dataset("ml-100k").events
    events = events[:limit] if limit is not None else events
    seen: Counter[str] = Counter()
    numbered = []
    for event in events:
        seen[event.user_id] += 1
        numbered.append(
            Event(
                event.user_id,
                event.item_id,
                event.event_type,
                event.timestamp,
                value=event.value,
                event_id=f"{event.user_id}#{seen[event.user_id]}",
            )
        )
    return numbered


def sequence_of(event_id: str | None) -> int:
    return int(event_id.rsplit("#", 1)[1]) if event_id else -1


def create_topics(bootstrap: str, prefix: str, partitions: int, replication: int) -> dict:
    topics = {name: f"{prefix}-{name}" for name in TOPIC_NAMES}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        compacted = {"cleanup.policy": "compact"}
        admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions if role == "input" else 1,
                    replication,
                    topic_configs=compacted if role in ("catalog", "profiles", "output") else {},
                )
                for role, name in topics.items()
            ]
        )
    finally:
        admin.close()
    return topics


def produce(bootstrap: str, topic: str, events: Sequence[Event]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for event in events:
        producer.send(
            topic,
            key=event.user_id.encode(),
            value=msgpack.packb(event.to_dict(), use_bin_type=True),
        )
    producer.flush()
    producer.close()


# ------------------------------------------------------------------ workers


class Worker:
    """One ``streamrec run`` worker of the fault runs (checkpoints every second)."""

    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        work_dir: Path,
        guarantee: str,
        instance: str,
        group: str,
        extra: Sequence[str] = (),
    ) -> None:
        self.restarts = 0
        self._make = lambda: ServiceProcess(
            bootstrap,
            topics,
            work_dir,
            "--processing-guarantee",
            guarantee,
            "--instance-id",
            instance,
            "--checkpoint-interval-s",
            "1",
            "--max-batch",
            "1000",
            *extra,
            group_id=group,
            state_dir=work_dir / "state",
        )
        self.service = self._make()

    def __enter__(self) -> Worker:
        self.service.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.__exit__(*exc)

    def consumed(self) -> float:
        return self.service.total("streamrec_events_consumed_total")

    def lag(self) -> float | None:
        samples = self.service.scrape() or {}
        values = [v for (name, _), v in samples.items() if name == "streamrec_consumer_lag"]
        return sum(values) if values else None

    def exited_by_design(self) -> bool:
        """True if the worker stopped itself with exit code 2 (a fatal error it reported)."""
        process = self.service.process
        return process is not None and process.poll() == 2

    def restart(self) -> None:
        """What a supervisor (systemd, Kubernetes) does when the process exits: start it again."""
        self.service.__exit__(None, None, None)
        self.service = self._make().__enter__()
        self.restarts += 1

    def kill(self) -> None:
        assert self.service.process is not None
        self.service.process.kill()
        self.service.process.wait()


def wait_caught_up(workers: Sequence[Worker], total: int, timeout: float = 300) -> None:
    """Until the group has consumed to the end (every worker's lag 0, three times in a row).

    A worker that stops itself with exit code 2 (exactly-once gives up on a
    transaction it can neither commit nor abort) is restarted, as its
    supervisor would; ``Worker.restarts`` counts it.
    """
    zero_in_a_row = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.exited_by_design():
                worker.restart()
        lags = [w.lag() for w in workers]
        if all(lag == 0 for lag in lags) and any(w.consumed() > 0 for w in workers):
            zero_in_a_row += 1
            if zero_in_a_row >= 3:
                return
        else:
            zero_in_a_row = 0
        time.sleep(1.0)
    logs = "\n".join(w.service.log_tail() for w in workers)
    raise AssertionError(f"not caught up with {total} events after {timeout:.0f}s\n{logs}")


def kill_repeatedly(
    start: Callable[[], Worker], kills: int, every: int, seed: int = 0
) -> tuple[Worker, int]:
    """Start a worker, SIGKILL it after it consumed about ``every`` events; ``kills`` times.

    Returns the last (running) worker and the number of kills done.
    """
    rng = random.Random(seed)
    for _ in range(kills):
        worker = start().__enter__()
        try:
            threshold = every + rng.randrange(every // 2)
            wait_until(
                lambda w=worker, t=threshold: w.consumed() >= t, 180, "progress", worker.service
            )
            time.sleep(rng.random())  # land the kill anywhere: mid-batch, mid-checkpoint, ...
            worker.kill()
        finally:
            worker.__exit__(None, None, None)
    return start().__enter__(), kills


# ------------------------------------------------------------------ scenarios


@dataclass
class FaultRun:
    """The setting of one fault scenario: broker, topics, consumer group, guarantee, events."""

    bootstrap: str
    topics: dict[str, str]
    work_dir: Path  # worker logs, and the checkpoints under state/
    guarantee: str
    group: str
    events: list[Event]  # every event the scenario produces, in order
    partitions: int = 1

    @classmethod
    def create(
        cls,
        bootstrap: str,
        work_dir: Path,
        prefix: str,
        guarantee: str,
        events: list[Event],
        *,
        partitions: int = 1,
        replication: int = 1,
    ) -> FaultRun:
        """Create the topics ``<prefix>-*``; the group is ``g-<prefix>``."""
        topics = create_topics(bootstrap, prefix, partitions, replication)
        return cls(bootstrap, topics, work_dir, guarantee, f"g-{prefix}", events, partitions)

    def produce(self, events: Sequence[Event]) -> None:
        produce(self.bootstrap, self.topics["input"], events)

    def worker(self, instance: str) -> Worker:
        """A worker of the scenario's group (not started yet)."""
        return Worker(
            self.bootstrap, self.topics, self.work_dir, self.guarantee, instance, self.group
        )


def run_scenario(
    run: FaultRun,
    name: str,
    *,
    start: Sequence[str],
    progress: int,
    fault: Callable[[list[Worker]], Sequence[Worker]],
    faults: int = 1,
) -> tuple[FaultReport, list[Worker]]:
    """Start, wait for progress, inject the fault, catch up, stop cleanly, count.

    Workers ``start`` (instance ids) are started and each must consume
    ``progress`` events; then ``fault`` gets the list of running workers
    (a worker it starts, it appends to that list, so that it is shut down
    whatever happens) and returns the workers that carry on. Those must
    consume every event of ``run`` (see :func:`wait_caught_up`) and exit 0
    on SIGTERM. Returns the report, accounted from the final checkpoints and
    the recommendations topic, and the workers that carried on.
    """
    started = time.monotonic()
    workers: list[Worker] = []
    try:
        for instance in start:
            workers.append(run.worker(instance).__enter__())
        deadline = time.monotonic() + 300
        while any(worker.consumed() < progress for worker in workers):
            if time.monotonic() > deadline:
                logs = "\n".join(w.service.log_tail() for w in workers)
                raise AssertionError(f"no progress to {progress} events in 300s\n{logs}")
            time.sleep(0.2)
        carry_on = list(fault(workers))
        wait_caught_up(carry_on, len(run.events))
        for worker in carry_on:
            assert worker.service.terminate() == 0  # clean stop: final checkpoint
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    report = FaultReport(name, run.guarantee, faults=faults)
    state_dir = run.work_dir / "state"
    account(report, run.bootstrap, run.topics, state_dir, run.group, run.events, run.partitions)
    report.seconds = time.monotonic() - started
    return report, carry_on


# ------------------------------------------------------------------ accounting


def account(
    report: FaultReport,
    bootstrap: str,
    topics: dict[str, str],
    state_dir: Path,
    group: str,
    events: Sequence[Event],
    partitions: int,
) -> FaultReport:
    """Fill ``report`` from the final checkpoints and the recommendations topic."""
    report.produced = len(events)
    store = CheckpointStore(state_dir, group, TEST_KEY.encode())
    produced_per_partition = _partition_counts(bootstrap, topics["input"], partitions)
    model_counts: Counter[str] = Counter()
    for partition in range(partitions):
        restored = store.load(TopicPartition(topics["input"], partition))
        expected = produced_per_partition[partition]
        if restored is None:
            report.never_learned += expected
            report.notes.append(f"partition {partition}: no checkpoint")
            continue
        ledger = restored.ledger
        covered = ledger.next_offset - max(ledger.first_offset, 0) - ledger.gaps
        folded = ledger.learned + ledger.invalid
        report.reflected += ledger.learned
        report.learned_twice += max(0, folded - covered)
        report.never_learned += max(0, expected - covered) + max(0, ledger.first_offset)
        model_counts.update(_events_per_user(restored.model))
    if model_counts:
        # What a model that learned every event exactly once, in order, holds
        # (not simply the events produced: inactive users expire).
        reference = _reference_counts(events, partitions)
        report.model_mismatched_users = sum(
            1
            for user in reference.keys() | model_counts.keys()
            if model_counts.get(user, 0) != reference.get(user, 0)
        )
    _account_outputs(report, bootstrap, topics["output"], events)
    return report


def _partition_counts(bootstrap: str, topic: str, partitions: int) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        return [ends[tp] - starts[tp] for tp in tps]
    finally:
        consumer.close()


def _reference_counts(events: Sequence[Event], partitions: int) -> Counter[str]:
    """Per-user counts of default models fed each partition's events once, uninterrupted."""
    from kafka.partitioner.default import murmur2

    from stream.registry import build_model

    models = [build_model() for _ in range(partitions)]
    for event in events:
        key = event.user_id.encode()
        partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        models[partition].learn_one(event)
    counts: Counter[str] = Counter()
    for model in models:
        counts.update(_events_per_user(model))
    return counts


def _events_per_user(model: Any) -> Counter[str]:
    """Events each user has in the model (from its per-user engagement counts)."""
    counts = getattr(model, "_user_counts", None)
    users = getattr(model, "_users", None)
    if counts is None or users is None:
        return Counter()
    out: Counter[str] = Counter()
    for user_id, row in users.items():
        if row < counts.events.shape[0]:
            out[user_id] = int(counts.events[row])
    return out


def _account_outputs(
    report: FaultReport, bootstrap: str, topic: str, events: Sequence[Event]
) -> None:
    isolation = "read_committed" if report.guarantee == "exactly-once" else "read_uncommitted"
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        seen: Counter[tuple[str, str]] = Counter()
        newest: dict[str, int] = defaultdict(lambda: -1)
        latest: dict[str, str | None] = {}
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    if record.value is None:
                        continue
                    message = msgpack.unpackb(record.value)
                    user, trigger = message["user_id"], message["trigger_event_id"]
                    report.lists += 1
                    seen[(user, trigger)] += 1
                    if sequence_of(trigger) < newest[user]:
                        report.backwards += 1
                    newest[user] = max(newest[user], sequence_of(trigger))
                    latest[user] = trigger
    finally:
        consumer.close()
    report.duplicate_lists = sum(n - 1 for n in seen.values() if n > 1)
    last_event = {e.user_id: e.event_id for e in events}
    report.stale_users = sum(1 for user, last in last_event.items() if latest.get(user) != last)
