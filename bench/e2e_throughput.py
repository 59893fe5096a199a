"""End-to-end events/s of ``streamrec run`` through a real broker, against the client's ceiling.

Run: ``python bench/e2e_throughput.py [--broker apache|embedded] [--partitions 1]``

1. Start a broker (Apache Kafka from Maven jars when Java is here, else the
   embedded one) and write MovieLens-100K into a fresh events topic (untimed).
2. Ceiling: a bare kafka-python consumer reads the topic and msgpack-decodes
   every value, nothing else.
3. End to end: the real ``streamrec run`` process consumes the same topic:
   decode, validate, learn, rank every touched user, publish, commit. The
   rate is measured from its first processed event to its last, scraped from
   its own /metrics, so process start-up and group join are not counted.

Both figures come from the same run on the same broker, so the ratio holds
even on a noisy machine.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import msgpack
from kafka import KafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.brokers import ApacheKafka, EmbeddedBroker  # noqa: E402
from consumers.config import Settings  # noqa: E402
from consumers.produce import make_replay_producer, produce_dataset  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from tests.integration.service_process import ServiceProcess  # noqa: E402


def ceiling(bootstrap: str, topic: str, n_events: int) -> float:
    """Raw consume + msgpack decode rate of kafka-python, events/s."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"ceiling-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    seen, started = 0, None
    while seen < n_events:
        for records in consumer.poll(timeout_ms=1000).values():
            if started is None:
                started = time.perf_counter()
            for record in records:
                msgpack.unpackb(record.value)
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def end_to_end(
    bootstrap: str, topics: dict[str, str], n_events: int, workdir: Path, model: str
) -> dict:
    with ServiceProcess(bootstrap, topics, workdir, "--model", model) as service:
        first = None
        while True:
            done = service.total("streamrec_events_consumed_total")
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= n_events:
                break
            time.sleep(0.1)
        seconds = now - first[0]
        rate = (done - first[1]) / seconds
        lists = service.total("streamrec_recommendations_published_total")
        service.terminate()
    return {"events_per_second": rate, "seconds": seconds, "lists_published": lists}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["apache", "embedded", "auto"], default="auto")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the events topic")
    parser.add_argument("--model", default=None, help="model of streamrec run (default: its own)")
    args = parser.parse_args()
    kind = args.broker
    if kind == "auto":
        kind = "apache" if ApacheKafka.available()[0] else "embedded"
    dataset = load_dataset("ml-100k")
    n = len(dataset.events)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        broker = stack.enter_context(ApacheKafka() if kind == "apache" else EmbeddedBroker())
        bootstrap = broker.bootstrap_servers
        prefix = f"bench{time.time_ns() % 10**8}"
        topics = {
            name: f"{prefix}-{name}" for name in ("input", "catalog", "profiles", "output", "dlq")
        }
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topics["input"], args.partitions, 1)])
        admin.close()
        producer = make_replay_producer(bootstrap)
        produce_dataset(
            producer, dataset, events_topic=topics["input"], catalog_topic=None, profile_topic=None
        )
        producer.close()
        raw = ceiling(bootstrap, topics["input"], n)
        model = args.model or Settings().model
        e2e = end_to_end(bootstrap, topics, n, Path(tmp), model)
    command = "python bench/e2e_throughput.py " + shlex.join(sys.argv[1:])
    print(f"command: {command.strip()}")
    print(
        f"broker: {kind}, events: {n:,} (MovieLens-100K), partitions: {args.partitions}, "
        f"model: {model}"
    )
    print(f"ceiling (kafka-python consume + msgpack decode): {raw:,.0f} events/s")
    print(
        f"end to end (streamrec run: decode, learn, rank, publish, commit): "
        f"{e2e['events_per_second']:,.0f} events/s over {e2e['seconds']:.1f}s, "
        f"{e2e['lists_published']:,.0f} lists published"
    )
    print(f"ratio end-to-end / ceiling: {e2e['events_per_second'] / raw:.2f}")


if __name__ == "__main__":
    main()
