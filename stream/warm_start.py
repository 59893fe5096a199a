"""Model transfer: learn from history offline, then keep learning online from there.

``streamrec pretrain`` runs a model over a dataset's history (in time order,
the same ``learn_one`` the service uses) and writes a signed snapshot
(:mod:`stream.snapshot`). ``streamrec run --warm-start`` and
``streamrec evaluate --warm-start`` start from it instead of from nothing.
A snapshot's model version names both the configuration and the history it
learned, and is what published recommendations carry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stream import snapshot
from stream.errors import SnapshotError
from stream.events import Event, Item, UserProfile
from stream.model import RecommendedItem, Recommender


def pretrain(
    model: Recommender,
    events: Sequence[Event],
    *,
    catalog: Sequence[Item] = (),
    profiles: Sequence[UserProfile] = (),
    progress: Callable[[int], None] | None = None,
    progress_every: int = 5000,
) -> Recommender:
    """Fold ``events`` into ``model`` in order, with the catalog and profiles first."""
    for item in catalog:
        model.add_item(item)
    for profile in profiles:
        model.add_profile(profile)
    for position, event in enumerate(events, start=1):
        model.learn_one(event)
        if progress is not None and position % progress_every == 0:
            progress(position)
    if progress is not None:
        progress(len(events))
    return model


def pretrained_version(model: Recommender, dataset: str, events: Sequence[Event]) -> str:
    """``<model version>-pt<digest>``: the digest names the history the model learned."""
    last = events[-1].timestamp if events else 0.0
    text = f"{dataset}|{len(events)}|{last!r}"
    return f"{model.version}-pt{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def write_pretrained(
    path: str | os.PathLike[str],
    model: Recommender,
    key: bytes,
    *,
    dataset: str,
    events: Sequence[Event],
) -> tuple[Path, str]:
    """Write ``model`` as a warm-start snapshot; returns the path and its model version."""
    version = pretrained_version(model, dataset, events)
    header: dict[str, Any] = {
        "kind": "pretrained",
        "model": model.name,
        "model_version": version,
        "dataset": dataset,
        "events": len(events),
        "last_event_timestamp": events[-1].timestamp if events else None,
        "users": model.n_users,
        "items": model.n_items,
    }
    return snapshot.write(path, snapshot.Snapshot(model, header), key), version


def load_pretrained(path: str | os.PathLike[str], key: bytes) -> tuple[Recommender, str]:
    """The model of a warm-start snapshot (verified first) and its model version."""
    loaded = snapshot.read(path, key)
    if not isinstance(loaded.model, Recommender):
        raise SnapshotError(f"snapshot {path} does not hold a model")
    version = loaded.header.get("model_version") or loaded.model.version
    return loaded.model, str(version)


class FrozenRecommender(Recommender):
    """A model that ranks but never learns: the "pretrained, no online updates" control.

    Catalog records still reach it (a withdrawn item must not be recommended)
    and ``forget_user`` still erases; events are otherwise ignored.
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self.name = f"{model.name}-frozen"

    def learn_one(self, event: Event) -> None:
        if event.event_type == "forget_user":
            self.model.forget_user(event.user_id)

    def add_item(self, item: Item) -> None:
        self.model.add_item(item)

    def withdraw_item(self, item_id: str) -> None:
        self.model.withdraw_item(item_id)

    def add_profile(self, profile: UserProfile) -> None:
        self.model.add_profile(profile)

    def forget_user(self, user_id: str) -> bool:
        return self.model.forget_user(user_id)

    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        return self.model.recommend(user_ids, k, with_reasons=with_reasons)

    def recommend_ids(self, user_id: str, k: int, *, domain: str | None = None) -> list[str]:
        return self.model.recommend_ids(user_id, k, domain=domain)

    def predict_tasks(self, event: Event) -> dict[str, float]:
        return self.model.predict_tasks(event)

    @property
    def n_users(self) -> int:
        return self.model.n_users

    @property
    def n_items(self) -> int:
        return self.model.n_items

    @property
    def version(self) -> str:
        return f"{self.model.version}-frozen"
