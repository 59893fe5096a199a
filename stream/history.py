"""What each user has done: the recent items that drive item-CF, and all seen items.

Two things are kept per user because they answer different questions:
``recent`` (bounded, in order, with weights) says what the user is into *now*
and feeds the co-occurrence window and the recency-weighted CF score;
``seen`` (every item interacted with) says what must not be recommended again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.entities import grown


@dataclass(slots=True)
class Interaction:
    item: int
    weight: float
    event_type: str
    timestamp: float


class UserHistory:
    """Per-user recent interactions (newest last) and the set of seen items.

    Parameters
    ----------
    window
        How many recent interactions are kept per user. They are the pairs the
        co-occurrence learns from and the items the CF score sums over, so the
        window bounds the per-event and per-ranking cost.
    """

    def __init__(self, window: int = 50) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._recent: dict[int, deque[Interaction]] = {}
        self._seen: dict[int, set[int]] = {}
        # positive_recent() per user, until the user's history changes: the
        # user-based CF reads many neighbours' histories per ranking.
        self._weighted: dict[int, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
        # The seen set's items as an array (room to append; the first
        # len(seen) are valid), which ranking reads for every event.
        self._seen_arrays: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_seen_arrays": {}}  # rebuilt from the sets on demand

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_seen_arrays", {})
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, user: int, interaction: Interaction) -> None:
        recent = self._recent.get(user)
        if recent is None:
            recent = self._recent[user] = deque(maxlen=self.window)
            self._seen[user] = set()
        recent.append(interaction)
        seen = self._seen[user]
        if interaction.item not in seen:
            seen.add(interaction.item)
            rows = self._seen_arrays.get(user)
            if rows is not None:
                if len(seen) > rows.shape[0]:
                    rows = self._seen_arrays[user] = grown(rows, len(seen))
                rows[len(seen) - 1] = interaction.item
        self._weighted.pop(user, None)

    def recent(self, user: int) -> deque[Interaction] | tuple[()]:
        return self._recent.get(user, ())

    def seen(self, user: int) -> set[int] | frozenset[int]:
        return self._seen.get(user, frozenset())

    def seen_rows(self, user: int) -> np.ndarray:
        """:meth:`seen` as an int array (in no particular order), kept up to date as items come."""
        seen = self._seen.get(user)
        if not seen:
            return _EMPTY_INT
        rows = self._seen_arrays.get(user)
        if rows is None:
            rows = self._seen_arrays[user] = np.fromiter(seen, dtype=np.int64, count=len(seen))
        return rows[: len(seen)]

    def positive_recent(self, user: int, decay: float) -> tuple[np.ndarray, np.ndarray]:
        """Recent positively-weighted items with recency weights, newest weighted most.

        The weight of an interaction ``p`` steps back from the newest is
        ``event_weight * decay**p``: what a user did last says most about
        what they want next. An item seen twice keeps its newest weight.

        Returns
        -------
        items, weights
            Two arrays of equal length, items unique.
        """
        cached = self._weighted.get(user, {}).get(decay)
        if cached is not None:
            return cached
        recent = self._recent.get(user)
        if not recent:
            return _EMPTY_INT, _EMPTY_FLOAT
        weights: dict[int, float] = {}
        factor = 1.0
        for interaction in reversed(recent):
            if interaction.weight > 0 and interaction.item not in weights:
                weights[interaction.item] = interaction.weight * factor
            factor *= decay
        if not weights:
            return _EMPTY_INT, _EMPTY_FLOAT
        result = (
            np.fromiter(weights.keys(), dtype=np.int64, count=len(weights)),
            np.fromiter(weights.values(), dtype=np.float64, count=len(weights)),
        )
        self._weighted.setdefault(user, {})[decay] = result
        return result

    def forget(self, user: int) -> None:
        self._recent.pop(user, None)
        self._seen.pop(user, None)
        self._seen_arrays.pop(user, None)
        self._weighted.pop(user, None)

    def forget_items(self, items: np.ndarray) -> None:
        """Remove expired items from every user's history (their rows are about to be reused).

        One C-level set test per user; only the few users who held one of the
        items are rewritten.
        """
        gone = set(items.tolist())
        for user, seen in self._seen.items():
            if seen.isdisjoint(gone):
                continue
            seen -= gone
            self._seen_arrays.pop(user, None)
            recent = self._recent[user]
            kept = [r for r in recent if r.item not in gone]
            recent.clear()
            recent.extend(kept)
            self._weighted.pop(user, None)

    def n_seen(self) -> int:
        """(user, item) pairs held in the seen sets."""
        return sum(len(seen) for seen in self._seen.values())


_EMPTY_INT = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT = np.zeros(0, dtype=np.float64)
