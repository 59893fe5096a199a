"""Several partitions' models on one stream, as the service runs them, for offline measurement.

The service keeps a model per input partition; events are keyed by user, so
each model learns its own users only. :class:`PartitionedModel` reproduces
that inside the evaluator: it routes every event and every ranking to the
user's partition, and (``sync_every``) has each model hand its item-side
changes to the others after every ``sync_every`` of its own events, as the
service's item-state sync does once per interval. ``sync_every=None`` keeps
the partitions apart, the service without the sync.

A sync interval in seconds is ``sync_every`` = events per second per
partition x interval (``bench/scale_out.py`` takes both).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from stream.events import Event, Item, UserProfile
from stream.model import RecommendedItem, Recommender


def partition_of(user_id: str, partitions: int) -> int:
    """The partition a user's events land on (a stable hash of the id)."""
    return zlib.crc32(user_id.encode()) % partitions


class PartitionedModel(Recommender):
    """``partitions`` copies of a model, each learning the users hashed to it.

    Parameters
    ----------
    make_model
        Makes one partition's (untrained) model.
    partitions
        How many.
    sync_every
        Events a partition learns between handing out its item-side changes;
        None: no sync (each partition learns item knowledge from its users only).
        Needs a model with ``share_item_side`` (the multitask model).
    """

    name = "partitioned"

    def __init__(
        self, make_model: Callable[[], Recommender], partitions: int, sync_every: int | None = None
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        if sync_every is not None and sync_every < 1:
            raise ValueError("sync_every must be >= 1 or None")
        self.make_model = make_model
        self.partitions = partitions
        self.sync_every = sync_every
        self.models = [make_model() for _ in range(partitions)]
        self._since_sync = [0] * partitions
        #: What the sync moved: records and msgpack bytes handed out, and syncs.
        self.records_sent = 0
        self.bytes_sent = 0
        self.syncs = 0
        if sync_every is not None:
            for model in self.models:
                if not hasattr(model, "share_item_side"):
                    raise ValueError(f"model {model.name!r} cannot share its item side")
                model.share_item_side()  # type: ignore[attr-defined]

    def params(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "sync_every": self.sync_every,
            "model": self.models[0].params(),
        }

    def clone(self) -> PartitionedModel:
        return PartitionedModel(self.make_model, self.partitions, self.sync_every)

    def _model(self, user_id: str) -> tuple[int, Recommender]:
        index = partition_of(user_id, self.partitions)
        return index, self.models[index]

    # ------------------------------------------------------------------ learning

    def learn_one(self, event: Event) -> None:
        index, model = self._model(event.user_id)
        model.learn_one(event)
        if self.sync_every is None:
            return
        self._since_sync[index] += 1
        if self._since_sync[index] >= self.sync_every:
            self._since_sync[index] = 0
            self.sync(index)

    def sync(self, index: int) -> None:
        """Partition ``index`` hands out its item-side changes; every other partition merges them.

        The records go through msgpack as they would to Kafka, so what is
        merged is what a worker would read, and the bytes are counted.
        """
        records = self.models[index].take_item_changes()  # type: ignore[attr-defined]
        if not records:
            return
        wire = [msgpack.packb(record) for record in records]
        self.records_sent += len(wire)
        self.bytes_sent += sum(len(data) for data in wire)
        self.syncs += 1
        decoded = [msgpack.unpackb(data) for data in wire]
        for other, model in enumerate(self.models):
            if other != index:
                model.merge_item_changes(decoded)  # type: ignore[attr-defined]

    def add_item(self, item: Item) -> None:
        for model in self.models:
            model.add_item(item)

    def withdraw_item(self, item_id: str) -> None:
        for model in self.models:
            model.withdraw_item(item_id)

    def add_profile(self, profile: UserProfile) -> None:
        self._model(profile.user_id)[1].add_profile(profile)

    def forget_user(self, user_id: str) -> bool:
        return self._model(user_id)[1].forget_user(user_id)

    # ------------------------------------------------------------------ ranking

    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        return [
            self._model(user)[1].recommend([user], k, with_reasons=with_reasons)[0]
            for user in user_ids
        ]

    def recommend_ids(self, user_id: str, k: int, *, domain: str | None = None) -> list[str]:
        return self._model(user_id)[1].recommend_ids(user_id, k, domain=domain)

    def predict_tasks(self, event: Event) -> dict[str, float]:
        return self._model(event.user_id)[1].predict_tasks(event)

    @property
    def n_users(self) -> int:
        return sum(model.n_users for model in self.models)

    @property
    def n_items(self) -> int:
        return max(model.n_items for model in self.models)
