"""Two guards around kafka-python's consumer-group join (3.0.12), one job: get the partitions.

Both were found after a worker restarted in a fault test stayed without
partitions for good (1 restart in about 100; ``tests/integration/test_faults.py``).
Two library bugs in a row did it:

1. **The topic unknown at the first join.** ``subscribe`` asks for a metadata
   update, but a metadata request already in flight (sent for no topics,
   before ``subscribe``) answers it (``ClusterMetadata.set_topics`` carries a
   TODO about this; Java fixed the same race in KAFKA-7831). The consumer then
   joins its group without the topic's partitions; elected leader, its range
   assignor logs "No partition metadata", assigns nothing, and the group has
   to rebalance again when the metadata arrives. :func:`input_partitions`
   fetches the partitions before the first poll. Over kill-restarts on
   Apache Kafka (``bench/restart_joins.py`` and runs like it): 10 empty first
   assignments in 172 worker starts before, 0 in 130 after.

2. **A join that finishes unseen.** That second rebalance is asked for by the
   leader's metadata snapshot differing from the one it assigned with. If the
   rejoin starts at the very end of a ``poll`` (about no time left), the
   JoinGroup goes on in the I/O thread, and the leader's assignment there
   records the new snapshot: the reason to rejoin is gone. The next ``poll``
   sees nothing to do and never collects the finished join, so the
   assignment is never applied, heartbeats stay off, and the broker drops
   the member 10 s later without the consumer noticing. (kafka-python 2.x
   kept rejoining while a join was pending; the 3.0 rewrite lost that.)
   Any leader-side metadata change can start it, partitions added to the
   input topic included. :func:`rejoin_if_stranded`, called after every
   poll, notices the finished join nobody collects and asks for a rejoin.

Both reach into the consumer's privates (``_coordinator``, ``_join_task``);
``tests/integration/test_group_join.py`` checks them against the installed
kafka-python, and fails when a release stops stranding joins, so the guard
can go.
"""

from __future__ import annotations

import logging

from kafka import KafkaConsumer
from kafka.errors import UnknownTopicOrPartitionError

log = logging.getLogger(__name__)


def input_partitions(consumer: KafkaConsumer, topic: str) -> set[int]:
    """The partitions of ``topic`` in the group consumer's own metadata (fetched if missing).

    Call after ``subscribe`` and before the first ``poll``. Raises
    ``UnknownTopicOrPartitionError`` (retriable) while the topic has no
    partitions, so that ``clients.with_backoff`` waits for it to be created.
    """
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise UnknownTopicOrPartitionError(f"topic {topic!r} has no partitions yet")
    return partitions


def rejoin_if_stranded(consumer: KafkaConsumer) -> bool:
    """Ask for a rejoin if a finished JoinGroup was left uncollected; True if so.

    A join in flight is normally collected by the next ``poll``, which then
    clears ``_join_task``; a finished one left behind while the coordinator
    sees no reason to rejoin is the stranded case. Rejoining is always safe:
    the broker answers with a new generation (or an unknown member id, and
    the consumer joins afresh).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if task is None or not task.is_done or coordinator.need_rejoin():
        return False
    log.warning("kafka-python left a finished group join unapplied; rejoining the group")
    coordinator.request_rejoin()
    return True
