"""Black-box test helpers: run the real `streamrec run`, read topics, scrape metrics."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from consumers.produce import make_replay_producer, produce_dataset
from stream.datasets import Dataset
from stream.events import Event

#: The key test services sign their checkpoints with (tests read them back with it).
TEST_KEY = "streamrec-test-snapshot-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamrec_command() -> list[str]:
    """The installed console script when there is one, else the module."""
    script = Path(sys.executable).with_name("streamrec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "consumers.cli"]


_LOG_NUMBERS = itertools.count(1)


class ServiceProcess:
    """``streamrec run`` as a child process, with its log in a file."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: dict[str, str],
        log_dir: Path,
        *extra: str,
        group_id: str | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.metrics_port = free_port()
        # Numbered: a restarted worker may get a port used before, and must
        # not overwrite that run's log; the numbers sort in start order.
        self.log_path = log_dir / f"streamrec-{next(_LOG_NUMBERS):03d}-{self.metrics_port}.log"
        self.args = [
            *streamrec_command(),
            "run",
            "--bootstrap-servers",
            bootstrap_servers,
            "--group-id",
            group_id or f"g-{topics['input']}",
            "--input-topic",
            topics["input"],
            "--catalog-topic",
            topics["catalog"],
            "--profile-topic",
            topics["profiles"],
            "--output-topic",
            topics["output"],
            "--dlq-topic",
            topics["dlq"],
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(self.metrics_port),
            "--state-dir",
            str(state_dir or log_dir / "state"),
            *extra,
        ]
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServiceProcess:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            self.args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "STREAMREC_SNAPSHOT_KEY": os.environ.get("STREAMREC_SNAPSHOT_KEY", TEST_KEY),
            },
        )
        wait_until(lambda: self.scrape() is not None, 60, "metrics endpoint", self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def scrape(self) -> dict[tuple[str, tuple], float] | None:
        """Samples of /metrics as {(name, sorted labels): value}, or None if not up."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"streamrec exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                text = response.read().decode()
        except OSError:
            return None
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def families(self) -> set[str]:
        """Names of the metric families served (a labelled metric with no child yet has none)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return {
                family.name for family in text_string_to_metric_families(response.read().decode())
            }

    def total(self, name: str) -> float:
        samples = self.scrape() or {}
        return sum(v for (n, _), v in samples.items() if n == name)


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    service: ServiceProcess | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = f"\nservice log:\n{service.log_tail()}" if service else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def replay_and_wait(
    service: ServiceProcess,
    data: Dataset,
    *,
    events: list[Event] | None = None,
    until: int | None = None,
    timeout: float = 240,
    what: str = "all events",
) -> None:
    """Replay ``data`` into the service's topics, then wait until it has consumed them.

    ``events`` replays only those events (the catalog and profiles go in
    whole every time); ``until`` is the consumed total to wait for (default:
    as many events as were replayed).
    """
    events = data.events if events is None else events
    topics = service.topics
    producer = make_replay_producer(service.bootstrap_servers)
    produce_dataset(
        producer,
        dataclasses.replace(data, events=events),
        events_topic=topics["input"],
        catalog_topic=topics["catalog"],
        profile_topic=topics["profiles"],
    )
    producer.close()
    until = len(events) if until is None else until
    wait_until(
        lambda: service.total("streamrec_events_consumed_total") >= until, timeout, what, service
    )


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 60) -> list:
    """Every record of ``topic`` up to its current end, in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
