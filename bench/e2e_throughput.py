"""End-to-end events/s of ``streamrec run`` through a real broker, against the client's ceiling.

Run: ``python bench/e2e_throughput.py [--broker apache|embedded] [--partitions 1]
[--dataset ml-100k|synthetic:...] [--limit N] [--rate R [--seconds S]] [--no-catalog]
[--service-arg=--checkpoint-interval-s=3600 ...]``

1. Start a broker (Apache Kafka from Maven jars when Java is here, else the
   embedded one). Write the dataset's catalog (``item-catalog``) and user
   profiles (``user-profiles``) first, flushed, as ``produce_dataset`` does
   (``--no-catalog``: neither, the setup of the figures before issue 13). The
   service reads both side topics to their end before it joins the group,
   so they are whole before its first event.
2. Unpaced (the default): write the events (the first ``--limit``) into a
   fresh events topic (untimed), then
   a. ceiling: a bare kafka-python consumer reads the topic and
      msgpack-decodes every value, nothing else;
   b. end to end: the real ``streamrec run`` process consumes the same
      topic: decode, validate, learn, rank every touched user, publish,
      commit. The rate is measured from its first processed event to its
      last, scraped from its own /metrics, so process start-up, the side
      topics' catch-up and the group join are not counted (they are shown
      apart, from the service's log). There is one worker, so this is the
      rate per worker.
3. Paced (``--rate R``): the service is started first and has read the side
   topics and been assigned its partitions before the first event is
   written; then ``produce_dataset(rate=R)`` writes ``min(--limit, R *
   --seconds)`` events live. Each published list's latency is its
   ``generated_at`` (the service's wall clock at publish) minus the Kafka
   CreateTime of its trigger event (the input record whose ``event_id`` is
   the list's ``trigger_event_id``; kafka-python stamps it, in whole ms, when
   ``send`` is called, so the producer's 20 ms linger and the broker
   round trip are inside the latency). The input and output topics are
   read back after the run; p50, p99 and max are over every matched list.

Peak RSS is the kernel's high-water mark (``VmHWM`` of
``/proc/<pid>/status``) of the ``streamrec run`` process (plus any children
it has), read just before it is stopped: the service, not this script,
which holds the dataset and produces.

Both throughput figures come from the same run on the same broker, so the
ratio holds even on a noisy machine.
"""

from __future__ import annotations

import argparse
import bisect
import math
import re
import shlex
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import msgpack
import numpy as np
from kafka import KafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.brokers import ApacheKafka, EmbeddedBroker  # noqa: E402
from consumers.config import Settings  # noqa: E402
from consumers.produce import make_replay_producer, produce_dataset  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from tests.integration.service_process import (  # noqa: E402
    ServiceProcess,
    read_topic,
    wait_until,
)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


# ----------------------------------------------------------------------------- the service


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (through /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        for child in text.split():
            found.append(int(child))
            found.extend(_children(int(child)))
    return found


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def service_memory(service: ServiceProcess) -> dict:
    """Peak (VmHWM) and current (VmRSS) resident memory of the service and its children, MiB."""
    assert service.process is not None
    pids = [service.process.pid, *_children(service.process.pid)]
    hwm = sum(_status_kib(pid, "VmHWM") for pid in pids) / 1024
    rss = sum(_status_kib(pid, "VmRSS") for pid in pids) / 1024
    return {"peak_mib": hwm, "rss_mib": rss, "processes": len(pids)}


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: (.*)$")


def startup_phases(service: ServiceProcess) -> dict[str, float]:
    """Seconds of the start-up phases, from the service log's timestamps.

    ``side``: from ``metrics on`` (the process is up) to ``side topics read``
    (catalog and profiles applied); ``join``: from there to ``assigned``.
    """
    stamps: dict[str, datetime] = {}
    marks = {"metrics on": "up", "side topics read": "side", "assigned ": "assigned"}
    for line in service.log_path.read_text(errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if not match:
            continue
        for needle, name in marks.items():
            if name not in stamps and match.group(2).startswith(needle):
                stamps[name] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
    out: dict[str, float] = {}
    if "up" in stamps and "side" in stamps:
        out["side"] = (stamps["side"] - stamps["up"]).total_seconds()
    if "side" in stamps and "assigned" in stamps:
        out["join"] = (stamps["assigned"] - stamps["side"]).total_seconds()
    text = service.log_path.read_text(errors="replace")
    out["catch_up_timed_out"] = float("not fully read after" in text)
    # Checkpoint saves are logged at DEBUG (--service-arg=--log-level=DEBUG).
    saves = [float(m) for m in re.findall(r"checkpoint \S+ at offset \d+ in ([\d.]+)s", text)]
    if saves:
        out["checkpoints"] = float(len(saves))
        out["checkpoint_max"] = max(saves)
        out["checkpoint_total"] = sum(saves)
    return out


def _has_lag(samples: dict) -> bool:
    """Whether the service reports a partition's lag: it owns one and has built its model."""
    return any(name == "streamrec_consumer_lag" for name, _ in samples)


def end_to_end(
    bootstrap: str,
    topics: dict[str, str],
    n_events: int,
    workdir: Path,
    model: str,
    extra: tuple[str, ...] = (),
) -> dict:
    with ServiceProcess(bootstrap, topics, workdir, "--model", model, *extra) as service:
        up = time.perf_counter()
        first, ready = None, None
        while True:
            samples = service.scrape() or {}
            done = sum(v for (n, _), v in samples.items() if n == "streamrec_events_consumed_total")
            now = time.perf_counter()
            if ready is None and _has_lag(samples):
                ready = now
            if first is None and done > 0:
                first = (now, done)
            if done >= n_events:
                break
            time.sleep(0.1)
        seconds = now - first[0]
        rate = (done - first[1]) / seconds
        lists = service.total("streamrec_recommendations_published_total")
        items = service.total("streamrec_model_items")
        memory = service_memory(service)
        service.terminate()
        phases = startup_phases(service)
    return {
        "events_per_second": rate,
        "seconds": seconds,
        "lists_published": lists,
        "to_first_event": first[0] - up,
        "to_ready": (ready or first[0]) - up,
        "model_items": items,
        "memory": memory,
        "phases": phases,
    }


def paced(
    bootstrap: str,
    topics: dict[str, str],
    dataset,  # noqa: ANN001 - stream.datasets.Dataset
    n_events: int,
    rate: float,
    workdir: Path,
    model: str,
    extra: tuple[str, ...] = (),
) -> dict:
    """Start the service, wait for its assignment, then write ``n_events`` at ``rate``."""
    input_topic = topics["input"]
    with ServiceProcess(bootstrap, topics, workdir, "--model", model, *extra) as service:
        up = time.perf_counter()
        # Ready: assigned, and the partition's model built (the side tables
        # replayed into it); the loop sets the lag gauge right after that.
        wait_until(
            lambda: _has_lag(service.scrape() or {}), 600, "the service's partition model", service
        )
        ready = time.perf_counter() - up
        producer = make_replay_producer(bootstrap)
        stats = produce_dataset(
            producer,
            dataset,
            events_topic=input_topic,
            catalog_topic=None,
            profile_topic=None,
            rate=rate,
            limit=n_events,
        )
        producer.close()
        written = time.perf_counter()
        wait_until(
            lambda: service.total("streamrec_events_consumed_total") >= n_events,
            600,
            "the paced events",
            service,
        )
        drain = time.perf_counter() - written  # within the 0.5 s of wait_until's polling
        items = service.total("streamrec_model_items")
        memory = service_memory(service)
        service.terminate()  # finishes the batch, publishes, commits
        phases = startup_phases(service)
    # event_id -> (CreateTime in s, partition, offset, user key) of every input record
    sent: dict[str, tuple[float, int, int, bytes]] = {}
    for record in read_topic(bootstrap, input_topic, timeout=300):
        event_id = msgpack.unpackb(record.value).get("event_id")
        if event_id is not None:
            sent[event_id] = (
                record.timestamp / 1000.0,
                record.partition,
                record.offset,
                record.key,
            )
    latencies, sent_at, unmatched, no_trigger, lists = [], [], 0, 0, 0
    # (user key, partition) -> [(trigger offset, generated_at)] of the user's lists
    by_user: dict[tuple[bytes, int], list[tuple[int, float]]] = {}
    for record in read_topic(bootstrap, topics["output"], timeout=300):
        if record.value is None:
            continue
        lists += 1
        message = msgpack.unpackb(record.value)
        trigger = message.get("trigger_event_id")
        if trigger is None:
            no_trigger += 1
        elif trigger not in sent:
            unmatched += 1
        else:
            created, partition, offset, key = sent[trigger]
            latencies.append(message["generated_at"] - created)
            sent_at.append(created)
            by_user.setdefault((key, partition), []).append((offset, message["generated_at"]))
    # Per event: until the first list of its user whose trigger is this event or a later one
    # (a list folds in every event of its user in the batch; the trigger is the last).
    waits, uncovered = [], 0
    for entries in by_user.values():
        entries.sort()
    for created, partition, offset, key in sent.values():
        entries = by_user.get((key, partition), [])
        at = bisect.bisect_left(entries, (offset, -math.inf))
        if at == len(entries):
            uncovered += 1
        else:
            waits.append(entries[at][1] - created)
    values, per_event = np.asarray(latencies), np.asarray(waits)

    def quantile(array: np.ndarray, q: float) -> float:
        return float(np.percentile(array, q)) if len(array) else float("nan")

    # p99 of the lists by 10 s window of their trigger's send time: a service that
    # keeps up is flat; one that falls behind grows.
    windows = []
    if latencies:
        start = min(sent_at)
        slot = (np.asarray(sent_at) - start) // 10
        windows = [quantile(values[slot == w], 99) for w in range(int(slot.max()) + 1)]
    return {
        "drain": drain,
        "windows": windows,
        "to_ready": ready,
        "produce": stats,
        "lists": lists,
        "matched": len(latencies),
        "unmatched": unmatched,
        "no_trigger": no_trigger,
        "events_with_id": len(sent),
        "p50": quantile(values, 50),
        "p99": quantile(values, 99),
        "max": quantile(values, 100),
        "mean": float(values.mean()) if len(values) else float("nan"),
        "event_p50": quantile(per_event, 50),
        "event_p99": quantile(per_event, 99),
        "event_max": quantile(per_event, 100),
        "events_covered": len(waits),
        "events_uncovered": uncovered,
        "model_items": items,
        "memory": memory,
        "phases": phases,
    }


# ----------------------------------------------------------------------------- report


def _phases_line(e2e: dict) -> str:
    phases = e2e["phases"]
    parts = []
    if "side" in phases:
        parts.append(f"side topics read in {phases['side']:.1f}s")
    if "join" in phases:
        parts.append(f"group join {phases['join']:.1f}s")
    parts.append(f"{e2e['to_ready']:.1f}s from /metrics up to the partition's model built")
    if "to_first_event" in e2e:
        parts.append(f"{e2e['to_first_event']:.1f}s from /metrics up to the first event")
    line = "service start-up (untimed): " + ", ".join(parts)
    if phases.get("catch_up_timed_out"):
        line += " (catch-up gave up at 60s: the rest was read inside the event loop)"
    return line


def _checkpoint_line(e2e: dict) -> str | None:
    phases = e2e["phases"]
    if "checkpoints" not in phases:
        return None
    return (
        f"checkpoint saves (service log, DEBUG): {phases['checkpoints']:.0f}, "
        f"{phases['checkpoint_total']:.1f}s in all, the longest {phases['checkpoint_max']:.1f}s"
    )


def _memory_line(e2e: dict) -> str:
    memory = e2e["memory"]
    extra = f", {memory['processes']} processes" if memory["processes"] > 1 else ""
    return (
        f"service memory (streamrec run, VmHWM): peak RSS {memory['peak_mib']:,.0f} MiB "
        f"(RSS at the end {memory['rss_mib']:,.0f} MiB{extra}); "
        f"model items {e2e['model_items']:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["apache", "embedded", "auto"], default="auto")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the events topic")
    parser.add_argument("--model", default=None, help="model of streamrec run (default: its own)")
    parser.add_argument(
        "--dataset",
        default="ml-100k",
        help="stream.datasets.load_dataset spec, e.g. "
        "synthetic:users=1000000,items=200000,events=1000000,seed=0",
    )
    parser.add_argument("--limit", type=int, default=None, help="events produced (default: all)")
    parser.add_argument(
        "--rate", type=float, default=None, help="paced run at this many events/s: latency"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=90.0,
        help="with --rate: seconds of paced traffic (events = min(--limit, rate * seconds))",
    )
    parser.add_argument(
        "--no-catalog", action="store_true", help="write neither the catalog nor the profiles"
    )
    parser.add_argument(
        "--service-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument of streamrec run (repeatable), e.g. "
        "--service-arg=--checkpoint-interval-s=3600",
    )
    args = parser.parse_args()
    extra = tuple(args.service_arg)
    kind = args.broker
    if kind == "auto":
        kind = "apache" if ApacheKafka.available()[0] else "embedded"
    started = time.perf_counter()
    dataset = load_dataset(args.dataset, progress=_progress)
    load_seconds = time.perf_counter() - started
    n = len(dataset.events) if args.limit is None else min(args.limit, len(dataset.events))
    if args.rate:
        n = min(n, int(args.rate * args.seconds))
    name = "MovieLens-100K" if args.dataset == "ml-100k" else args.dataset
    model = args.model or Settings().model
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        broker = stack.enter_context(ApacheKafka() if kind == "apache" else EmbeddedBroker())
        bootstrap = broker.bootstrap_servers
        prefix = f"bench{time.time_ns() % 10**8}"
        topics = {
            role: f"{prefix}-{role}" for role in ("input", "catalog", "profiles", "output", "dlq")
        }
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topics["input"], args.partitions, 1)])
        admin.close()
        producer = make_replay_producer(bootstrap)
        side = None
        if not args.no_catalog:
            _progress(f"writing {len(dataset.items):,} items, {len(dataset.profiles):,} profiles")
            side = produce_dataset(
                producer,
                dataset,
                events_topic=topics["input"],
                catalog_topic=topics["catalog"],
                profile_topic=topics["profiles"],
                limit=0,
            )
        if args.rate:
            producer.close()
            _progress(f"paced run: {n:,} events at {args.rate:,.0f}/s")
            result = paced(bootstrap, topics, dataset, n, args.rate, Path(tmp), model, extra)
        else:
            _progress(f"writing {n:,} events")
            written = produce_dataset(
                producer,
                dataset,
                events_topic=topics["input"],
                catalog_topic=None,
                profile_topic=None,
                limit=n,
            )
            producer.close()
            _progress(f"{written.events:,} events written in {written.seconds:.1f}s; ceiling")
            raw = ceiling(bootstrap, topics["input"], n)
            _progress("end to end")
            result = end_to_end(bootstrap, topics, n, Path(tmp), model, extra)
    command = "python bench/e2e_throughput.py " + shlex.join(sys.argv[1:])
    print(f"command: {command.strip()}")
    print(f"broker: {kind}, events: {n:,} ({name}), partitions: {args.partitions}, model: {model}")
    if side is not None:
        print(
            f"catalog: {side.items:,} items and {side.profiles:,} profiles written first "
            f"({side.seconds:.1f}s, untimed; dataset loaded in {load_seconds:.1f}s)"
        )
    else:
        print(f"catalog: none (--no-catalog); dataset loaded in {load_seconds:.1f}s")
    print(_phases_line(result))
    if args.rate:
        stats = result["produce"]
        print(
            f"paced: {stats.events:,} events at {args.rate:,.0f}/s requested, "
            f"{stats.events_per_second:,.0f}/s written over {stats.seconds:.1f}s"
        )
        print(
            f"event-to-list latency (generated_at - trigger event's Kafka CreateTime): "
            f"p50 {result['p50'] * 1000:,.0f} ms, p99 {result['p99'] * 1000:,.0f} ms, "
            f"max {result['max'] * 1000:,.0f} ms, mean {result['mean'] * 1000:,.0f} ms"
        )
        print(
            "p99 by 10 s window of send time: "
            + ", ".join(f"{v * 1000:,.0f}" for v in result["windows"])
            + f" ms; the service read the last event {result['drain']:.1f}s after it was written"
        )
        print(
            f"per event (until its user's next list): p50 {result['event_p50'] * 1000:,.0f} ms, "
            f"p99 {result['event_p99'] * 1000:,.0f} ms, max {result['event_max'] * 1000:,.0f} ms "
            f"over {result['events_covered']:,} events "
            f"({result['events_uncovered']:,} with no list after them)"
        )
        print(
            f"lists: {result['lists']:,} published, {result['matched']:,} matched to their "
            f"trigger event, {result['no_trigger']:,} without trigger_event_id, "
            f"{result['unmatched']:,} with an id not in the input "
            f"({result['events_with_id']:,} input events carry an event_id)"
        )
    else:
        print(f"ceiling (kafka-python consume + msgpack decode): {raw:,.0f} events/s")
        print(
            f"end to end (streamrec run: decode, learn, rank, publish, commit): "
            f"{result['events_per_second']:,.0f} events/s over {result['seconds']:.1f}s, "
            f"{result['lists_published']:,.0f} lists published"
        )
        print(f"ratio end-to-end / ceiling: {result['events_per_second'] / raw:.2f}")
        print(f"per worker (1 worker): {result['events_per_second']:,.0f} events/s")
    print(_memory_line(result))
    checkpoints = _checkpoint_line(result)
    if checkpoints:
        print(checkpoints)


if __name__ == "__main__":
    main()
