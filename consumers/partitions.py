"""One model per owned input partition, created, restored and dropped as partitions move.

Events are keyed by user, so all of a user's events land on one partition.
Keeping a separate model per partition (as Kafka Streams keeps a state store
per task) is what lets state move with its partition: when the group hands a
partition to another worker, that worker restores the partition's last
checkpoint and carries on, and no two workers ever hold the same user.

The price is that item-side statistics (co-occurrence, item embeddings,
popularity) are learned per partition from that partition's users only.
With one partition per worker (the default) nothing is lost; with many
small partitions per worker each model sees less data (see README).

Catalog items and user profiles are global. They are kept here as a table
(latest record per key) and replayed into every model a partition gets,
so a model created after a rebalance knows the catalog too.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kafka import TopicPartition

from consumers.checkpoint import CheckpointStore, OffsetLedger
from stream.events import Item, UserProfile
from stream.model import Recommender

log = logging.getLogger(__name__)

#: Seconds between recounts of the entries per model table (:meth:`PartitionModels.state_size`,
#: the ``streamrec_model_state_entries`` gauge): a recount walks every row of every model
#: (co-occurrence pairs per item row), too slow to repeat for every batch, and a gauge a few
#: seconds old is as good to a scraper. An idle worker recounts at once (see the service loop).
STATE_SIZE_REFRESH_S = 5.0


@dataclass
class PartitionState:
    """A partition's model, what it has learned, and where output resumes."""

    tp: TopicPartition
    model: Recommender
    ledger: OffsetLedger
    model_version: str
    #: Offsets below this were published before a restart: learn, do not publish.
    replay_until: int = -1
    dirty: bool = False
    #: When it was last checkpointed; never yet, so its first batch is saved at once.
    saved_at: float = -math.inf

    def replaying(self, offset: int) -> bool:
        return offset < self.replay_until

    @functools.cached_property
    def takes_domain(self) -> bool:
        """Whether the model's ``recommend`` takes a ``domain`` (looked up once per model)."""
        return "domain" in inspect.signature(self.model.recommend).parameters


class PartitionModels:
    """The models of the partitions this worker owns.

    Parameters
    ----------
    new_model
        Makes the model of a partition that has no checkpoint (fresh, or
        from the warm-start snapshot); returns it with its model version.
    store
        Checkpoints to restore from; None runs without checkpoints.
    """

    def __init__(
        self,
        new_model: Callable[[], tuple[Recommender, str]],
        store: CheckpointStore | None,
    ) -> None:
        self.new_model = new_model
        self.store = store
        self._states: dict[TopicPartition, PartitionState] = {}
        self._items: dict[str, Item | None] = {}
        self._profiles: dict[str, UserProfile] = {}
        self._state_size: dict[str, int] = {}
        #: When (``time.monotonic()``) :meth:`state_size` last recounted.
        self.state_counted_at = -math.inf

    def __iter__(self) -> Iterator[PartitionState]:
        return iter(list(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)

    def get(self, tp: TopicPartition) -> PartitionState | None:
        return self._states.get(tp)

    # ------------------------------------------------------------------ assignment

    def assign(self, tp: TopicPartition, committed: int | None) -> PartitionState:
        """Take ownership of ``tp``: restore its checkpoint or start a new model.

        ``committed`` is the group's committed offset for ``tp`` (None if
        none). The returned state's ``ledger.next_offset`` is where the
        consumer must resume when a checkpoint was restored.
        """
        restored = self.store.load(tp) if self.store is not None else None
        if restored is not None:
            state = PartitionState(tp, restored.model, restored.ledger, restored.model_version)
            if committed is not None and committed > restored.ledger.next_offset:
                state.replay_until = committed
            log.info(
                "%s[%d]: restored checkpoint at offset %d (%d events learned)%s",
                tp.topic,
                tp.partition,
                restored.ledger.next_offset,
                restored.ledger.learned,
                f"; replaying silently up to {committed}" if state.replay_until >= 0 else "",
            )
        else:
            model, version = self.new_model()
            state = PartitionState(tp, model, OffsetLedger(), version)
            log.info(
                "%s[%d]: no checkpoint; new model from offset %s",
                tp.topic,
                tp.partition,
                "the start" if committed is None else committed,
            )
        self._replay_side_tables(state.model)
        self._states[tp] = state
        return state

    def drop(self, tp: TopicPartition) -> PartitionState | None:
        return self._states.pop(tp, None)

    # ------------------------------------------------------------------ side tables

    def add_item(self, item: Item) -> None:
        self._items[item.item_id] = item
        for state in self._states.values():
            state.model.add_item(item)

    def withdraw_item(self, item_id: str) -> None:
        self._items[item_id] = None
        for state in self._states.values():
            state.model.withdraw_item(item_id)

    def add_profile(self, profile: UserProfile) -> None:
        self._profiles[profile.user_id] = profile
        for state in self._states.values():
            state.model.add_profile(profile)

    def forget_profile(self, user_id: str) -> None:
        """A forgotten user's profile goes too (it would place them again otherwise)."""
        self._profiles.pop(user_id, None)

    def _replay_side_tables(self, model: Recommender) -> None:
        for item_id, item in self._items.items():
            if item is None:
                model.withdraw_item(item_id)
            else:
                model.add_item(item)
        for profile in self._profiles.values():
            model.add_profile(profile)

    # ------------------------------------------------------------------ totals

    @property
    def n_users(self) -> int:
        return sum(state.model.n_users for state in self._states.values())

    @property
    def n_items(self) -> int:
        return max((state.model.n_items for state in self._states.values()), default=0)

    def state_size(self, max_age: float = STATE_SIZE_REFRESH_S) -> dict[str, int]:
        """Entries per table, summed over the partitions' models (models that report them).

        Recounted only when the last count is older than ``max_age`` seconds
        (0: now); otherwise the last count is returned.
        """
        now = time.monotonic()
        if now - self.state_counted_at >= max_age:
            self._state_size = self._count_state()
            self.state_counted_at = now
        return dict(self._state_size)

    def _count_state(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for state in self._states.values():
            report = getattr(state.model, "state_size", None)
            for table, entries in (report() if report is not None else {}).items():
                if isinstance(entries, int | float):
                    total[table] = total.get(table, 0) + int(entries)
        return total
