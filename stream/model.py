"""The interface every streaming recommender honours.

The runtime, the offline evaluator and the tests drive models only through
this class, which is why an offline figure says something about the live
service. Hyper-parameters are constructor arguments stored unchanged under
their own names; learned state lives in private attributes. So
:meth:`Recommender.clone` gives a fresh, untrained model with the same
settings, and :meth:`Recommender.params` names a configuration.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.events import Event, Item, UserProfile


@dataclass(slots=True)
class RecommendedItem:
    """One entry of a user's list: the item, its score, per-task scores, and why."""

    item_id: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "score": round(self.score, 6),
            "scores": {name: round(value, 6) for name, value in self.scores.items()},
            "reason": self.reason,
        }


class Recommender(abc.ABC):
    """Base class: learn from events one at a time, rank items for many users at once.

    Subclasses implement :meth:`learn_one`, :meth:`recommend` and the bookkeeping
    methods. Scoring must never create state: ranking for an unknown user
    gives a fallback list and leaves the model as it was.
    """

    #: Short name used in the model version.
    name = "recommender"

    # ------------------------------------------------------------------ learning

    @abc.abstractmethod
    def learn_one(self, event: Event) -> None:
        """Fold one event into the model."""

    def learn_many(self, events: Iterable[Event]) -> None:
        """Fold events in, in order (order matters: histories and decays depend on it)."""
        for event in events:
            self.learn_one(event)

    def add_item(self, item: Item) -> None:  # noqa: B027 - optional hook
        """A catalog record: features of a new or updated item."""

    def withdraw_item(self, item_id: str) -> None:  # noqa: B027 - optional hook
        """A catalog tombstone: the item must never be recommended again."""

    def add_profile(self, profile: UserProfile) -> None:  # noqa: B027 - optional hook
        """A user-profile record: side features of a user."""

    @abc.abstractmethod
    def forget_user(self, user_id: str) -> bool:
        """Erase everything held about a user; True if there was anything."""

    # ------------------------------------------------------------------ ranking

    @abc.abstractmethod
    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        """Top-``k`` items for each user, best first, excluding what each already saw.

        ``with_reasons=False`` skips building explanations (the evaluator
        ranks every event and does not need them).
        """

    def recommend_ids(self, user_id: str, k: int, *, domain: str | None = None) -> list[str]:
        """The item ids of one user's :meth:`recommend` list, best first.

        What an evaluation reads for every event; a model may answer it
        without building entries. ``domain`` is for models whose
        :meth:`recommend` takes one (None: the call passes none).
        """
        if domain is None:
            lists = self.recommend([user_id], k, with_reasons=False)
        else:
            lists = self.recommend([user_id], k, with_reasons=False, domain=domain)  # type: ignore[call-arg]
        return [entry.item_id for entry in lists[0]]

    def predict_tasks(self, event: Event) -> dict[str, float]:
        """Per-task predictions for the event's (user, item), made before learning it.

        Keys are task names from :mod:`stream.tasks` (probabilities in [0, 1])
        plus ``rating`` (predicted stars) where the model predicts it. Models
        without task heads return an empty dict. Must not create state.
        """
        return {}

    def recommend_one(self, user_id: str, k: int) -> list[RecommendedItem]:
        return self.recommend([user_id], k)[0]

    # ------------------------------------------------------------------ size

    @property
    @abc.abstractmethod
    def n_users(self) -> int:
        """Users with state in the model."""

    @property
    @abc.abstractmethod
    def n_items(self) -> int:
        """Items with state in the model."""

    # ------------------------------------------------------------------ identity

    def params(self) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same name."""
        signature = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name in signature.parameters
            if name != "self" and hasattr(self, name)
        }

    def clone(self) -> Recommender:
        """A fresh, untrained model with the same hyper-parameters."""
        return type(self)(**self.params())

    @property
    def version(self) -> str:
        """Names the model class and configuration; changes when either changes."""
        text = json.dumps(self.params(), sort_keys=True, default=repr)
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        return f"{self.name}-{digest}"
