"""Exactly-once: a batch's output and its input offsets commit in one Kafka transaction.

The consume-transform-produce pattern (KIP-98, with KIP-447 fencing): each
batch's recommendations, tombstones and dead letters are sent inside a
transaction, the batch's input offsets are added to the same transaction
with the consumer's group metadata, and the transaction commits. Readers
with ``isolation.level=read_committed`` then see a batch's output exactly
when its input counts as consumed, and never an aborted batch's output.

If a transaction cannot commit it is aborted, and the model, which has
already learned the batch, is rolled back to its checkpoint by the service
(:meth:`consumers.app.RecommenderService.rewind`). A producer fenced by a
newer incarnation of the same worker stops the process: the newer one owns
the work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, ProducerFencedError

from consumers.errors import ConsumersError
from consumers.outbox import OutgoingRecord

log = logging.getLogger(__name__)


class TransactionAborted(ConsumersError):
    """The batch's transaction did not commit; its output is invisible to read_committed."""


class Fenced(ConsumersError):
    """The producer cannot go on: a newer instance with its transactional id took over,
    or a transaction could neither commit nor abort. The process must stop (and be
    restarted: the restart recovers from the checkpoint)."""


class TransactionalPublisher:
    """Publishes one batch per transaction.

    Parameters
    ----------
    producer
        A producer created with a ``transactional_id``.
    flush_timeout
        Seconds the batch's records may take to be acknowledged.
    """

    def __init__(
        self, producer: KafkaProducer, flush_timeout: float = 30.0, step_timeout: float = 30.0
    ) -> None:
        self.producer = producer
        self.flush_timeout = flush_timeout
        self.step_timeout = step_timeout
        # Completes (or aborts) whatever an earlier incarnation with this
        # transactional id left open, and fences it off.
        producer.init_transactions()

    def commit(
        self, records: Sequence[OutgoingRecord], offsets: dict[Any, Any], group_metadata: Any
    ) -> None:
        """Send ``records`` and commit ``offsets`` atomically, or raise.

        Raises TransactionAborted (retryable after a rewind) or Fenced (fatal).
        """
        producer = self.producer
        try:
            producer.begin_transaction()
            futures = [
                producer.send(r.topic, key=r.key, value=r.value, headers=r.headers) for r in records
            ]
            producer.flush(timeout=self.flush_timeout)
            failed = [f for f in futures if not (f.is_done and f.succeeded())]
            if failed:
                raise TransactionAborted(
                    f"{len(failed)} of {len(futures)} records not acknowledged"
                )
            if offsets:
                self._bounded(
                    "adding the offsets to the transaction",
                    lambda: producer.send_offsets_to_transaction(offsets, group_metadata),
                )
            self._bounded("committing the transaction", producer.commit_transaction)
        except ProducerFencedError as error:
            raise Fenced(f"producer fenced by a newer instance: {error}") from error
        except (KafkaError, TransactionAborted) as error:
            self._abort()
            raise TransactionAborted(f"transaction aborted: {error}") from error
        for record in records:
            if record.on_success is not None:
                record.on_success()

    def _bounded(self, what: str, step: Callable[[], None]) -> None:
        """Run a blocking transactional call, giving up after ``step_timeout`` seconds.

        kafka-python waits on these without a time limit; after a broker that
        coordinated the transaction died we have seen one wait forever. A step
        that does not finish leaves the producer unusable, so that is fatal:
        the process exits and its restart recovers from the checkpoint (the
        broker aborts the open transaction when it times out, or when the
        restarted worker's producer fences this one).
        """
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                step()
                outcome.append(None)
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                outcome.append(error)

        worker = threading.Thread(target=run, name=f"streamrec-txn: {what}", daemon=True)
        worker.start()
        worker.join(self.step_timeout)
        if not outcome:
            raise Fenced(f"{what} did not finish in {self.step_timeout:.0f}s; giving up")
        if outcome[0] is not None:
            raise outcome[0]

    def _abort(self) -> None:
        try:
            self._bounded("aborting the transaction", self.producer.abort_transaction)
        except ProducerFencedError as error:
            raise Fenced(f"producer fenced by a newer instance: {error}") from error
        except KafkaError as error:
            # Its records stay invisible to read_committed readers (the
            # coordinator expires the transaction), but this producer is
            # unusable: stop, and let the restart recover from the checkpoint.
            raise Fenced(f"transaction could neither commit nor abort: {error}") from error
