"""The service loop: poll a micro-batch, learn it, publish fresh lists, commit, checkpoint.

One turn of the loop:

1. poll a micro-batch of ``user-events`` (and apply new catalog/profile records);
2. decode and validate each record; a bad one becomes a dead letter;
3. score each event against the user's last published list (online hit
   rate), then learn it, in order, into its partition's model
   (:mod:`consumers.partitions`);
4. rank every user touched by the batch and queue their lists (a
   ``forget_user`` queues a null tombstone instead);
5. at-least-once: deliver everything queued (lists and dead letters), wait
   for the acks, and only then commit the batch's offsets; exactly-once: send
   it all and the offsets in one Kafka transaction
   (:mod:`consumers.transactions`);
6. when due, checkpoint each partition's model with the offset it reflects
   (:class:`consumers.checkpoint.Checkpoint`).

A crash anywhere before the commit means the batch is redelivered; on
restart each partition resumes from its checkpoint and re-learns, without
publishing again, what was already published (docs/reliability.md).
"""

from __future__ import annotations

import copy
import logging
import math
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgpack
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import clients, group_join
from consumers.checkpoint import Checkpoint, CheckpointStore
from consumers.config import Settings
from consumers.deadletter import DeadLetters
from consumers.metrics import ServiceMetrics
from consumers.outbox import Outbox, OutgoingRecord
from consumers.partitions import STATE_SIZE_REFRESH_S, PartitionModels, PartitionState
from consumers.side_topics import SideTopicReader
from consumers.transactions import TransactionAborted, TransactionalPublisher
from stream.errors import InvalidRecord
from stream.evaluation.online import RollingAUC, RollingHitRate
from stream.events import DEFAULT_DOMAIN, Event, decode_event
from stream.model import RecommendedItem, Recommender
from stream.tasks import OpenViews, task_labels

log = logging.getLogger(__name__)

#: First wait, and the cap of the doubling waits, after polling fails because
#: the cluster cannot be reached (see ``RecommenderService._poll_input``).
POLL_BACKOFF_S = 0.5
POLL_BACKOFF_CAP_S = 15.0


@dataclass(slots=True)
class Trigger:
    """The last event of a user in a batch: what the refreshed list reflects."""

    event_id: str | None
    event_timestamp: float
    kafka_timestamp_ms: int
    #: The domain of that event: the list is drawn from it (the section the user is in).
    domain: str = DEFAULT_DOMAIN


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


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "nothing"


class _Rebalance(ConsumerRebalanceListener):
    """Hands partition changes to the service (kafka-python calls these inside poll)."""

    def __init__(self, service: RecommenderService) -> None:
        self.service = service

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.service.partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.service.partitions_assigned(assigned)

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self.service.partitions_lost(lost)


class RecommenderService:
    """One worker: a consumer-group member that learns and publishes recommendations.

    Parameters
    ----------
    settings
        Topics, Kafka connection, k, metrics address, guarantees, state dir, ...
    model
        The model every partition without a checkpoint starts from (a copy
        each): a fresh model, or one warm-started from a snapshot.
    metrics
        Metrics to update; a fresh set on its own registry by default.
    checkpoints
        Where partition checkpoints live; None runs without them (a restart
        then starts from an empty model at the committed offsets).
    model_version
        The version published with lists of partitions started from
        ``model`` (default: ``model.version``; a warm start names its snapshot).
    """

    def __init__(
        self,
        settings: Settings,
        model: Recommender,
        metrics: ServiceMetrics | None = None,
        *,
        checkpoints: CheckpointStore | None = None,
        model_version: str | None = None,
    ) -> None:
        self.settings = settings
        self.template = model
        self.template_version = model_version or model.version
        self.metrics = metrics or ServiceMetrics()
        self.stop_requested = threading.Event()
        self.hits = RollingHitRate(k=settings.k)
        self.task_aucs: dict[str, RollingAUC] = {}
        self.open_views = OpenViews()
        self.dead_letters = DeadLetters(settings.dlq_topic, settings.group_id, self.metrics)
        self.stats = ServiceStats()
        self.metrics_port: int | None = None
        self.partitions = PartitionModels(self._new_model, checkpoints)
        self.checkpoint = (
            Checkpoint(
                checkpoints,
                interval=settings.checkpoint_interval_s,
                on_saved=self.metrics.checkpoint_last_success.set,
            )
            if checkpoints is not None
            else None
        )
        self.exactly_once = settings.processing_guarantee == "exactly-once"
        self._consumer: KafkaConsumer | None = None
        self._outbox: Outbox | None = None
        self._transactions: TransactionalPublisher | None = None
        self._side: SideTopicReader | None = None
        # Partitions whose lag this worker exports (removed when they move away).
        self._lag_partitions: set[str] = set()
        # Partitions assigned but paused until their state is restored.
        self._awaiting_restore: list[TopicPartition] = []
        # False once the in-memory state has run ahead of what was published
        # (a batch learned but not delivered): such state is never checkpointed.
        self._state_publishable = True
        # When the last batch was recorded (the state gauges may lag it while busy).
        self._last_batch_at = -math.inf
        self._poll_backoff = POLL_BACKOFF_S  # seconds before polling again after an outage

    def _new_model(self) -> tuple[Recommender, str]:
        return copy.deepcopy(self.template), self.template_version

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
        if self.checkpoint is None:
            log.warning(
                "running without checkpoints (no --state-dir): "
                "a restarted worker starts from an empty model"
            )
        if not self._connect():
            return 0  # stopped while waiting for the cluster: nothing was consumed
        assert self._consumer is not None and self._side is not None
        log.info("consuming %s as group %s (%s)", s.input_topic, s.group_id, s.processing_guarantee)
        try:
            while not self.stop_requested.is_set():
                batch = self._poll_input()
                if self._awaiting_restore:
                    self._restore_assigned()
                if batch:
                    self.process_batch(batch)
                elif len(self._outbox or ()):
                    self._commit({})  # side-topic dead letters
                elif self.checkpoint is not None and self._state_publishable:
                    self.checkpoint.save(self.partitions)  # what became due while idle
                if not batch and self._last_batch_at > self.partitions.state_counted_at:
                    self._export_state_size(max_age=0)  # idle: count what the last batches left
                self._update_lag()
            if self.checkpoint is not None and self._state_publishable:
                self.checkpoint.save(self.partitions, force=True)
        finally:
            self._close()
        log.info("stopped after %d events in %d batches", self.stats.events, self.stats.batches)
        return 0

    def _poll_input(self) -> dict:
        """The side topics' news, then the next input batch; empty while the cluster is away.

        kafka-python can raise a retriable error out of ``poll`` when the
        broker disappears (finding the group coordinator fails with a refused
        connection). That is an outage, not a reason to exit: back off
        (capped, doubling, cut short by a stop request), count it in
        ``streamrec_broker_unavailable_total`` and poll again. Nothing is
        lost: offsets were not committed past what was processed.
        """
        assert self._consumer is not None and self._side is not None
        s = self.settings
        try:
            self._side.poll()
            batch = self._consumer.poll(timeout_ms=s.poll_timeout_ms, max_records=s.max_batch)
            group_join.rejoin_if_stranded(self._consumer)
        except (KafkaError, OSError) as exc:
            if isinstance(exc, KafkaError) and not getattr(exc, "retriable", False):
                raise
            self.metrics.broker_unavailable.inc()
            log.warning(
                "polling Kafka failed (%s: %s); retrying in %.1fs",
                type(exc).__name__,
                exc,
                self._poll_backoff,
            )
            self.stop_requested.wait(self._poll_backoff)
            self._poll_backoff = min(POLL_BACKOFF_CAP_S, 2 * self._poll_backoff)
            return {}
        self._poll_backoff = POLL_BACKOFF_S
        return batch

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
        producer_options: dict[str, Any] = {}
        consumer_options: dict[str, Any] = {}
        if self.exactly_once:
            producer_options = {
                "transactional_id": s.transactional_id(),
                "transaction_timeout_ms": s.transaction_timeout_ms,
                "enable_idempotence": True,
            }
            consumer_options = {"isolation_level": "read_committed"}
        producer = clients.with_backoff(
            "starting the producer",
            lambda: clients.make_producer(s, **producer_options),
            stop,
            on_retry=on_retry,
        )
        reader = clients.with_backoff(
            "starting the catalog reader", lambda: clients.make_reader(s), stop, on_retry=on_retry
        )
        consumer = clients.with_backoff(
            "starting the consumer",
            lambda: clients.make_consumer(s, **consumer_options),
            stop,
            on_retry=on_retry,
        )
        if producer is None or reader is None or consumer is None:
            return False
        self._outbox = Outbox(producer, on_retry=on_retry)
        if self.exactly_once:
            publisher = clients.with_backoff(
                "initialising transactions",
                lambda: TransactionalPublisher(
                    producer, step_timeout=s.transaction_timeout_ms / 1000
                ),
                stop,
                on_retry=on_retry,
            )
            if publisher is None:
                return False
            self._transactions = publisher
        outbox = self._outbox
        self._side = SideTopicReader(
            reader,
            s.catalog_topic,
            s.profile_topic,
            self.partitions,
            reject=lambda record, reason, error: outbox.add(
                self.dead_letters.letter(record, reason, error)
            ),
        )
        self._side.catch_up()
        consumer.subscribe([s.input_topic], listener=_Rebalance(self))
        if (
            clients.with_backoff(
                f"reading the partitions of {s.input_topic}",
                lambda: group_join.input_partitions(consumer, s.input_topic),
                stop,
            )
            is None
        ):
            return False
        self._consumer = consumer
        return True

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
        if self._side is not None:
            self._side.consumer.close(autocommit=False)
        if self._outbox is not None:
            self._outbox.producer.close(timeout=10)

    # ------------------------------------------------------------------ partitions

    def partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """New partitions: hold them until their state is restored (in the loop, not here).

        kafka-python calls this on its network thread, where no blocking
        client call may run; pausing is local. The loop then restores each
        partition's checkpoint, seeks to the offset it reflects and resumes it
        (:meth:`_restore_assigned`) before a single record of it is fetched.
        """
        assert self._consumer is not None
        log.info("assigned %s", _names(assigned))
        self._consumer.pause(*assigned)
        self._awaiting_restore.extend(assigned)

    def _restore_assigned(self) -> None:
        assert self._consumer is not None
        pending, self._awaiting_restore = self._awaiting_restore, []
        owned = self._consumer.assignment()
        for tp in pending:
            if tp not in owned:
                continue  # revoked again before we got to it
            committed = self._consumer.committed(tp)
            state = self.partitions.assign(tp, committed)
            if state.ledger.first_offset >= 0:
                # A checkpoint: resume exactly after the last event it learned.
                self._consumer.seek(tp, state.ledger.next_offset)
            elif committed is not None and self.checkpoint is not None:
                # Offsets were committed but no checkpoint holds what they
                # reflect (the owner died before its first save, or the files
                # were lost): rebuild from the log, silently, up to the commit.
                state.replay_until = committed
                self._consumer.seek_to_beginning(tp)
            elif committed is not None:
                self._consumer.seek(tp, committed)
            else:
                self._consumer.seek_to_beginning(tp)
            self._consumer.resume(tp)

    def partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Between batches (everything polled is committed): save, then let go.

        Runs on kafka-python's network thread: checkpoint writes are local
        file I/O, no client call, so they may run here, and must, so that the
        next owner restores them.
        """
        log.info("revoked %s", _names(revoked))
        states = [s for s in (self.partitions.get(tp) for tp in revoked) if s is not None]
        if self.checkpoint is not None and self._state_publishable:
            started = time.monotonic()
            saved = self.checkpoint.save(states, force=True)
            took = time.monotonic() - started
            # Heartbeats wait for this callback, but the broker's session clock
            # does not: past the session timeout the group hands the partitions
            # on while this save is still running.
            if took > clients.SESSION_TIMEOUT_MS / 2000:
                log.warning(
                    "checkpointing %d revoked partition(s) took %.1fs, over half the "
                    "%.0fs session timeout: the group may move them before the save ends",
                    saved,
                    took,
                    clients.SESSION_TIMEOUT_MS / 1000,
                )
        for tp in revoked:
            self._let_go(tp)

    def partitions_lost(self, lost: list[TopicPartition]) -> None:
        """Taken away without a clean handover: drop the state, save nothing."""
        log.warning("lost %s without a clean handover: their state is dropped", _names(lost))
        for tp in lost:
            self._let_go(tp)

    def _let_go(self, tp: TopicPartition) -> None:
        self.partitions.drop(tp)

    def rewind(self) -> None:
        """Roll every owned partition back to its checkpoint (after an aborted transaction).

        Partitions without a checkpoint start over, empty, from the last
        committed offset.
        """
        assert self._consumer is not None
        owned = [state.tp for state in self.partitions]
        for tp in owned:
            self.partitions.drop(tp)
        self._awaiting_restore.extend(owned)
        self._restore_assigned()
        self._state_publishable = True

    # ------------------------------------------------------------------ one batch

    def process_batch(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Learn, publish and commit one polled batch; True if it was committed."""
        assert self._outbox is not None
        started = time.perf_counter()
        touched: dict[tuple[TopicPartition, str], Trigger] = {}
        consumed: Counter[str] = Counter()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        forgot = False
        for tp, records in batch.items():
            state = self.partitions.get(tp)
            if state is None:
                continue  # revoked during this poll: its new owner will read these
            for record in records:
                if not state.ledger.admit(record.offset):
                    continue  # already reflected in the restored model
                replay = state.replaying(record.offset)
                event = self._accept(record, publish=not replay)
                if event is None:
                    state.ledger.invalid += 1
                    continue
                forgot |= event.event_type == "forget_user"
                self._learn(state, event, record.timestamp, touched, replay=replay)
                state.ledger.learned += 1
                state.dirty = True
                consumed[event.event_type] += 1
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        self._queue_lists(touched)
        # Until the batch's output is published the model is ahead of it,
        # and a checkpoint of it would skip that output after a crash.
        self._state_publishable = False
        committed = self._commit(offsets)
        if self.checkpoint is not None and self._state_publishable:
            # A forgotten user must leave the files too, not only memory.
            self.checkpoint.save(self.partitions, force=forgot)
        self._record_batch(consumed, started)
        return committed

    def _record_batch(self, consumed: Counter[str], started: float) -> None:
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
        m.model_users.set(self.partitions.n_users)
        m.model_items.set(self.partitions.n_items)
        self._last_batch_at = time.monotonic()
        self._export_state_size()
        if n_events:
            m.last_event_processed.set(time.time())

    def _export_state_size(self, max_age: float = STATE_SIZE_REFRESH_S) -> None:
        """Set the state gauges from a count at most ``max_age`` seconds old."""
        for table, entries in self.partitions.state_size(max_age).items():
            self.metrics.model_state.labels(table=table).set(entries)

    def _accept(self, record: Any, *, publish: bool = True) -> Event | None:
        """The record's event, or None after dead-lettering it (unless already published)."""
        try:
            return decode_event(record.value, record.key)
        except InvalidRecord as exc:
            if publish:
                self._reject(record, exc.reason, exc)
            return None

    def _reject(self, record: Any, reason: str, error: BaseException) -> None:
        assert self._outbox is not None
        self._outbox.add(self.dead_letters.letter(record, reason, error))
        self.stats.invalid += 1

    def _learn(
        self,
        state: PartitionState,
        event: Event,
        kafka_timestamp_ms: int,
        touched: dict[tuple[TopicPartition, str], Trigger],
        *,
        replay: bool = False,
    ) -> None:
        model = state.model
        if event.event_type == "forget_user":
            model.forget_user(event.user_id)
            self.partitions.forget_profile(event.user_id)
            self.hits.forget(event.user_id)
            self.open_views.drop(event.user_id)
            touched.pop((state.tp, event.user_id), None)
            if not replay:
                self._publish_list(event.user_id, None)
            return
        assert event.item_id is not None
        if not replay:
            # Score before learning, or the hit rate and AUCs would leak the answer.
            self.hits.observe(event.user_id, event.item_id)
            # Predictions for a view are scored once its outcome is known.
            if task_labels(event):
                predictions = model.predict_tasks(event)
                for resolved, labels in self.open_views.observe(event, predictions):
                    self._score_tasks(resolved, labels)
        model.learn_one(event)
        if not replay:
            touched[(state.tp, event.user_id)] = Trigger(
                event.event_id, event.timestamp, kafka_timestamp_ms, event.domain
            )

    def _score_tasks(self, predictions: dict[str, float], labels: dict[str, int]) -> None:
        for task, label in labels.items():
            if task in predictions:
                auc = self.task_aucs.get(task)
                if auc is None:
                    auc = self.task_aucs[task] = RollingAUC()
                auc.add(predictions[task], label)

    def _queue_lists(self, touched: dict[tuple[TopicPartition, str], Trigger]) -> None:
        # One recommend() call per (partition, domain): a user's list is drawn
        # from the domain of their last event, for models that know domains.
        groups: dict[tuple[TopicPartition, str], list[str]] = {}
        for (tp, user_id), trigger in touched.items():
            groups.setdefault((tp, trigger.domain), []).append(user_id)
        for (tp, domain), users in groups.items():
            state = self.partitions.get(tp)
            if state is None:
                continue
            if domain != DEFAULT_DOMAIN and state.takes_domain:
                lists = state.model.recommend(users, self.settings.k, domain=domain)
            else:
                lists = state.model.recommend(users, self.settings.k)
            for user_id, items in zip(users, lists, strict=True):
                trigger = touched[(tp, user_id)]
                message = recommendation_message(user_id, items, state.model_version, trigger)
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

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Publish queued output, commit ``offsets``: one transaction, or ack then commit."""
        if self._transactions is not None:
            return self._commit_transaction(offsets)
        return self._deliver_and_commit(offsets)

    def _commit_transaction(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        assert self._outbox is not None and self._consumer is not None
        assert self._transactions is not None
        records = self._outbox.take()
        if not records and not offsets:
            return True
        try:
            self._transactions.commit(records, offsets, self._consumer.group_metadata())
        except TransactionAborted as exc:
            log.warning("%s; rolling the model back to its checkpoint", exc)
            self.metrics.broker_unavailable.inc()
            self.rewind()
            return False
        self._state_publishable = True
        return True

    def _deliver_and_commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        assert self._outbox is not None and self._consumer is not None
        if not self._outbox.deliver(self.stop_requested):
            log.warning(
                "stopping with an undelivered batch: it is not committed "
                "and will be processed again after restart"
            )
            return False
        self._state_publishable = True
        if not offsets:
            return True
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:
            # Outputs are delivered; if the group moved on, the new owner
            # reprocesses this batch (at-least-once), which is safe.
            log.warning("offset commit failed (%s); batch may be processed again", exc)
            return False
        if self.checkpoint is None:
            # Without model checkpoints the committed offsets are all that is saved.
            self.metrics.checkpoint_last_success.set(time.time())
        return True

    def _update_lag(self) -> None:
        assert self._consumer is not None
        owned = self._consumer.assignment()
        labels = {str(tp.partition) for tp in owned}
        # A partition that moved away is the new owner's to report.
        for partition in self._lag_partitions - labels:
            self.metrics.consumer_lag.remove(partition)
        self._lag_partitions &= labels
        total = 0
        for tp in owned:
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                lag = max(0, highwater - self._consumer.position(tp, timeout_ms=100))
            except (KafkaError, AssertionError):
                continue
            self.metrics.consumer_lag.labels(partition=str(tp.partition)).set(lag)
            self._lag_partitions.add(str(tp.partition))
            total += lag
        self.stats.lag = total
