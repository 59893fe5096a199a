"""The service loop: poll a micro-batch, learn it, publish fresh lists, commit.

One turn of the loop, in the order that makes it at-least-once:

1. poll a micro-batch of ``user-events`` (and apply new catalog/profile records);
2. decode and validate each record; a bad one becomes a dead letter;
3. score each event against the user's last published list (online hit
   rate), then learn it, in order;
4. rank every user touched by the batch and queue their lists (a
   ``forget_user`` queues a null tombstone instead);
5. deliver everything queued (lists and dead letters) and wait for the acks;
6. only then commit the batch's offsets.

A crash anywhere before 6 means the batch is redelivered: nothing accepted is
lost, and at worst a batch is learned twice.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgpack
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import clients
from consumers.config import Settings
from consumers.deadletter import DeadLetters
from consumers.metrics import ServiceMetrics
from consumers.outbox import Outbox, OutgoingRecord
from consumers.side_topics import SideTopicReader
from stream.errors import InvalidRecord
from stream.events import Event, decode_event
from stream.model import RecommendedItem, Recommender
from stream.online_eval import RollingAUC, RollingHitRate
from stream.tasks import OpenViews, task_labels

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Trigger:
    """The last event of a user in a batch: what the refreshed list reflects."""

    event_id: str | None
    event_timestamp: float
    kafka_timestamp_ms: int


@dataclass
class ServiceStats:
    """Running totals, for progress displays (the metrics carry the same)."""

    events: int = 0
    invalid: int = 0
    published: int = 0
    batches: int = 0
    lag: int = 0
    hit_rate: float = 0.0


def recommendation_message(
    user_id: str, items: list[RecommendedItem], model_version: str, trigger: Trigger
) -> dict[str, Any]:
    """The contract's recommendation record."""
    return {
        "user_id": user_id,
        "items": [item.to_dict() for item in items],
        "model_version": model_version,
        "trigger_event_id": trigger.event_id,
        "event_timestamp": trigger.event_timestamp,
        "generated_at": time.time(),
    }


class RecommenderService:
    """One worker: a consumer-group member that learns and publishes recommendations.

    Parameters
    ----------
    settings
        Topics, Kafka connection, k, metrics address, ...
    model
        The online model (any :class:`~stream.model.Recommender`).
    metrics
        Metrics to update; a fresh set on its own registry by default.
    """

    def __init__(
        self, settings: Settings, model: Recommender, metrics: ServiceMetrics | None = None
    ) -> None:
        self.settings = settings
        self.model = model
        self.metrics = metrics or ServiceMetrics()
        self.stop_requested = threading.Event()
        self.hits = RollingHitRate(k=settings.k)
        self.task_aucs: dict[str, RollingAUC] = {}
        self.open_views = OpenViews()
        self.dead_letters = DeadLetters(settings.dlq_topic, settings.group_id, self.metrics)
        self.stats = ServiceStats()
        self.metrics_port: int | None = None
        self._consumer: KafkaConsumer | None = None
        self._outbox: Outbox | None = None
        self._side: SideTopicReader | None = None

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self, *_: object) -> None:
        """Finish the current batch, deliver, commit, then leave (SIGTERM/SIGINT)."""
        if not self.stop_requested.is_set():
            log.info("stop requested: finishing the current batch")
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Run until a stop is requested; returns the process exit code."""
        s = self.settings
        self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
        log.info("metrics on http://%s:%d/metrics", s.metrics_host, self.metrics_port)
        if not self._connect():
            return 0  # stopped while waiting for the cluster: nothing was consumed
        assert self._consumer is not None and self._side is not None
        log.info("consuming %s as group %s", s.input_topic, s.group_id)
        try:
            while not self.stop_requested.is_set():
                self._side.poll()
                batch = self._consumer.poll(timeout_ms=s.poll_timeout_ms, max_records=s.max_batch)
                if batch:
                    self.process_batch(batch)
                elif len(self._outbox or ()):
                    self._deliver_and_commit({})  # side-topic dead letters
                self._update_lag()
        finally:
            self._close()
        log.info("stopped after %d events in %d batches", self.stats.events, self.stats.batches)
        return 0

    def _connect(self) -> bool:
        s, stop = self.settings, self.stop_requested
        on_retry = self.metrics.broker_unavailable.inc
        admin = clients.with_backoff(
            "connecting to Kafka", lambda: clients.make_admin(s), stop, on_retry=on_retry
        )
        if admin is None:
            return False
        try:
            if (
                s.create_topics
                and clients.with_backoff(
                    "creating topics",
                    lambda: clients.ensure_topics(admin, s),
                    stop,
                    on_retry=on_retry,
                )
                is None
            ):
                return False
        finally:
            admin.close()
        producer = clients.with_backoff(
            "starting the producer", lambda: clients.make_producer(s), stop, on_retry=on_retry
        )
        reader = clients.with_backoff(
            "starting the catalog reader", lambda: clients.make_reader(s), stop, on_retry=on_retry
        )
        consumer = clients.with_backoff(
            "starting the consumer", lambda: clients.make_consumer(s), stop, on_retry=on_retry
        )
        if producer is None or reader is None or consumer is None:
            return False
        self._outbox = Outbox(producer, on_retry=on_retry)
        outbox = self._outbox
        self._side = SideTopicReader(
            reader,
            s.catalog_topic,
            s.profile_topic,
            self.model,
            reject=lambda record, reason, error: outbox.add(
                self.dead_letters.letter(record, reason, error)
            ),
        )
        self._side.catch_up()
        consumer.subscribe([s.input_topic])
        self._consumer = consumer
        return True

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
        if self._side is not None:
            self._side.consumer.close(autocommit=False)
        if self._outbox is not None:
            self._outbox.producer.close(timeout=10)

    # ------------------------------------------------------------------ one batch

    def process_batch(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Learn, publish and commit one polled batch; True if it was committed."""
        assert self._outbox is not None
        started = time.perf_counter()
        touched: dict[str, Trigger] = {}
        consumed: Counter[str] = Counter()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batch.items():
            for record in records:
                event = self._accept(record)
                if event is not None:
                    self._learn(event, record.timestamp, touched)
                    consumed[event.event_type] += 1
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        self._queue_lists(touched)
        committed = self._deliver_and_commit(offsets)
        for event_type, count in consumed.items():
            self.metrics.events_consumed.labels(event_type=event_type).inc(count)
        n_events = sum(consumed.values())
        self.stats.events += n_events
        self.stats.batches += 1
        self.stats.hit_rate = self.hits.rate
        m = self.metrics
        m.batch_processing.observe(time.perf_counter() - started)
        m.online_hit_rate.labels(k=str(self.settings.k)).set(self.hits.rate)
        for task, auc in self.task_aucs.items():
            value = auc.value()
            if value is not None:
                m.task_auc.labels(task=task).set(value)
        m.model_users.set(self.model.n_users)
        m.model_items.set(self.model.n_items)
        if n_events:
            m.last_event_processed.set(time.time())
        return committed

    def _accept(self, record: Any) -> Event | None:
        """The record's event, or None after dead-lettering it."""
        try:
            return decode_event(record.value, record.key)
        except InvalidRecord as exc:
            self._reject(record, exc.reason, exc)
            return None

    def _reject(self, record: Any, reason: str, error: BaseException) -> None:
        assert self._outbox is not None
        self._outbox.add(self.dead_letters.letter(record, reason, error))
        self.stats.invalid += 1

    def _learn(self, event: Event, kafka_timestamp_ms: int, touched: dict[str, Trigger]) -> None:
        if event.event_type == "forget_user":
            self.model.forget_user(event.user_id)
            self.hits.forget(event.user_id)
            self.open_views.drop(event.user_id)
            touched.pop(event.user_id, None)
            self._publish_list(event.user_id, None)
            return
        assert event.item_id is not None
        # Score before learning, or the hit rate and AUCs would leak the answer.
        self.hits.observe(event.user_id, event.item_id)
        # Predictions for a view are scored once its outcome is known.
        if task_labels(event):
            predictions = self.model.predict_tasks(event)
            for resolved, labels in self.open_views.observe(event, predictions):
                self._score_tasks(resolved, labels)
        self.model.learn_one(event)
        touched[event.user_id] = Trigger(event.event_id, event.timestamp, kafka_timestamp_ms)

    def _score_tasks(self, predictions: dict[str, float], labels: dict[str, int]) -> None:
        for task, label in labels.items():
            if task in predictions:
                auc = self.task_aucs.get(task)
                if auc is None:
                    auc = self.task_aucs[task] = RollingAUC()
                auc.add(predictions[task], label)

    def _queue_lists(self, touched: dict[str, Trigger]) -> None:
        if not touched:
            return
        users = list(touched)
        lists = self.model.recommend(users, self.settings.k)
        version = self.model.version
        for user_id, items in zip(users, lists, strict=True):
            trigger = touched[user_id]
            message = recommendation_message(user_id, items, version, trigger)
            self.hits.published(user_id, [item.item_id for item in items])
            latency = message["generated_at"] - trigger.kafka_timestamp_ms / 1000.0
            self._publish_list(user_id, msgpack.packb(message, use_bin_type=True), latency)

    def _publish_list(
        self, user_id: str, value: bytes | None, latency: float | None = None
    ) -> None:
        assert self._outbox is not None
        m = self.metrics

        def published() -> None:
            m.recommendations_published.inc()
            self.stats.published += 1
            if latency is not None and latency >= 0:
                m.event_to_recommendation.observe(latency)

        self._outbox.add(
            OutgoingRecord(
                self.settings.output_topic, user_id.encode("utf-8"), value, on_success=published
            )
        )

    def _deliver_and_commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        assert self._outbox is not None and self._consumer is not None
        if not self._outbox.deliver(self.stop_requested):
            log.warning(
                "stopping with an undelivered batch: it is not committed "
                "and will be processed again after restart"
            )
            return False
        if not offsets:
            return True
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:
            # Outputs are delivered; if the group moved on, the new owner
            # reprocesses this batch (at-least-once), which is safe.
            log.warning("offset commit failed (%s); batch may be processed again", exc)
            return False
        self.metrics.checkpoint_last_success.set(time.time())
        return True

    def _update_lag(self) -> None:
        assert self._consumer is not None
        total = 0
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                lag = max(0, highwater - self._consumer.position(tp, timeout_ms=100))
            except (KafkaError, AssertionError):
                continue
            self.metrics.consumer_lag.labels(partition=str(tp.partition)).set(lag)
            total += lag
        self.stats.lag = total
