"""``streamrec demo``: the whole product on one machine, with nothing else installed.

It starts an embedded Kafka-protocol broker on a free loopback port, replays
MovieLens-100K into it as a live stream, runs the real service against it,
shows live progress, and ends by itself with a summary (or keeps serving with
``--keep-running``). Ctrl-C stops it cleanly at any point.
"""

from __future__ import annotations

import logging
import secrets
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import msgpack
from kafka import KafkaConsumer, TopicPartition

from consumers.app import RecommenderService
from consumers.brokers import EmbeddedBroker
from consumers.checkpoint import CheckpointStore
from consumers.config import Settings
from consumers.produce import ProduceStats, make_replay_producer, produce_dataset
from stream.datasets import load_dataset
from stream.registry import build_model

log = logging.getLogger(__name__)

#: Seconds the demo waits for the service to drain after the replay ends.
DRAIN_TIMEOUT = 120.0


@dataclass
class DemoSummary:
    events_produced: int = 0
    events_processed: int = 0
    invalid: int = 0
    lists_published: int = 0
    users_with_events: int = 0
    users_with_lists: int = 0
    seconds: float = 0.0
    rolling_hit_rate: float = 0.0
    overall_hit_rate: float = 0.0
    example: dict = field(default_factory=dict)

    def render(self) -> str:
        rate = self.events_processed / self.seconds if self.seconds else 0.0
        lines = [
            "",
            "streamrec demo summary",
            f"  events produced          {self.events_produced:>10,}",
            f"  events processed         {self.events_processed:>10,}  ({rate:,.0f} events/s "
            f"over {self.seconds:.0f}s)",
            f"  invalid (dead-lettered)  {self.invalid:>10,}",
            f"  lists published          {self.lists_published:>10,}",
            f"  users with a list        {self.users_with_lists:>10,} of "
            f"{self.users_with_events:,} users with events",
            f"  rolling hit rate @10     {self.rolling_hit_rate:>10.3f}  (last 1,000 events)",
            f"  overall hit rate @10     {self.overall_hit_rate:>10.3f}  (every event, "
            "scored against the list published before it)",
        ]
        if self.example:
            lines.append(f"  latest list of user {self.example['user_id']}:")
            for entry in self.example["items"][:5]:
                lines.append(f"    {entry['item_id']:>6}  {entry['score']:.3f}  {entry['reason']}")
        return "\n".join(lines)


def run_demo(
    *,
    rate: float | None = 1500.0,
    limit: int | None = None,
    keep_running: bool = False,
    k: int = 10,
    metrics_port: int = 9108,
) -> int:
    """Run the demo; returns the exit code."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return _run(
            stop, rate=rate, limit=limit, keep_running=keep_running, k=k, metrics_port=metrics_port
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run(
    stop: threading.Event,
    *,
    rate: float | None,
    limit: int | None,
    keep_running: bool,
    k: int,
    metrics_port: int,
) -> int:
    dataset = load_dataset("ml-100k", progress=_say)
    events = dataset.events if limit is None else dataset.events[:limit]
    _say(f"MovieLens-100K: {len(events):,} ratings, {len(dataset.items):,} movies")
    _say("starting the embedded Kafka-protocol broker (Tansu) ...")
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="streamrec-demo-") as state:
        _say(f"broker ready on {broker.bootstrap_servers}")
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers,
            group_id="streamrec-demo",
            k=k,
            metrics_host="127.0.0.1",
            metrics_port=metrics_port,
            state_dir=state,
        )
        # Checkpoints as in production, signed with a key that lives as long as the demo.
        checkpoints = CheckpointStore(state, settings.group_id, secrets.token_bytes(32))
        service = RecommenderService(settings, build_model(settings.model), checkpoints=checkpoints)
        worker = threading.Thread(target=service.run, name="streamrec-service", daemon=True)
        worker.start()
        _wait_for_metrics(service, stop)
        _say(f"service running; metrics on http://127.0.0.1:{service.metrics_port}/metrics")
        produced = ProduceStats()

        def replay() -> None:
            producer = make_replay_producer(broker.bootstrap_servers)
            result = produce_dataset(
                producer,
                dataset,
                limit=limit,
                rate=rate,
                stop=stop,
                progress=lambda s: setattr(produced, "events", s.events),
            )
            produced.events, produced.seconds = result.events, result.seconds
            producer.close()

        producer_thread = threading.Thread(target=replay, name="replay", daemon=True)
        started = time.monotonic()
        producer_thread.start()
        _say(f"replaying at {rate:,.0f} events/s" if rate else "replaying as fast as possible")
        drained_at = None
        while not stop.is_set():
            stop.wait(1.0)
            _progress_line(service, produced, started)
            replay_done = not producer_thread.is_alive()
            if replay_done and service.stats.events + service.stats.invalid >= produced.events:
                drained_at = drained_at or time.monotonic()
                if not keep_running:
                    break
            if replay_done and time.monotonic() - started > DRAIN_TIMEOUT + len(events) / (
                rate or 1e9
            ):
                _say("\nthe service did not drain in time; stopping")
                break
        _say("")
        elapsed = (drained_at or time.monotonic()) - started
        stop.set()
        service.request_stop()
        worker.join(timeout=60)
        summary = DemoSummary(
            events_produced=produced.events,
            events_processed=service.stats.events,
            invalid=service.stats.invalid,
            lists_published=service.stats.published,
            users_with_events=len({e.user_id for e in events[: produced.events]}),
            seconds=elapsed,
            rolling_hit_rate=service.hits.rate,
            overall_hit_rate=service.hits.overall_rate,
        )
        summary.users_with_lists, summary.example = _read_lists(broker.bootstrap_servers, settings)
        print(summary.render(), flush=True)
    return 0


def _wait_for_metrics(service: RecommenderService, stop: threading.Event) -> None:
    while service.metrics_port is None and not stop.is_set():
        time.sleep(0.05)


def _progress_line(service: RecommenderService, produced: ProduceStats, started: float) -> None:
    elapsed = max(time.monotonic() - started, 1e-9)
    stats = service.stats
    sys.stderr.write(
        f"\r{elapsed:5.0f}s  produced {produced.events:>7,}  processed {stats.events:>7,}  "
        f"{stats.events / elapsed:>6,.0f} ev/s  lag {stats.lag:>6,}  "
        f"hit@10 {stats.hit_rate:.3f}  lists {stats.published:>7,}  dlq {stats.invalid}   "
    )
    sys.stderr.flush()


def _read_lists(bootstrap_servers: str, settings: Settings) -> tuple[int, dict]:
    """Users with a current list in the output topic, and the newest list as an example."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(settings.output_topic, p)
            for p in sorted(consumer.partitions_for_topic(settings.output_topic) or ())
        ]
        if not partitions:
            return 0, {}
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        latest: dict[bytes, bytes | None] = {}
        newest: tuple[int, bytes] | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            consumer.position(tp) < end for tp, end in ends.items()
        ):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    latest[record.key] = record.value
                    if record.value is not None and (
                        newest is None or record.timestamp >= newest[0]
                    ):
                        newest = (record.timestamp, record.value)
        users = sum(1 for value in latest.values() if value is not None)
        return users, msgpack.unpackb(newest[1]) if newest else {}
    finally:
        consumer.close()
