"""What each user has done: the recent items that drive item-CF, and all seen items.

Two things are kept per user because they answer different questions:
``recent`` (bounded, in order, with weights) says what the user is into *now*
and feeds the co-occurrence window and the recency-weighted CF score;
``seen`` (every item interacted with) says what must not be recommended again.

Recent interactions are kept as arrays (item, weight, time, kind) in a ring
per user, written twice over: slot ``s`` and slot ``s + size`` hold the
same interaction. The newest ``n`` then always lie in one slice, so the
co-occurrence window and the recency-weighted items are read from views,
with no Python object per interaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from stream.entities import grown


@dataclass(slots=True)
class Interaction:
    item: int
    weight: float
    event_type: str
    timestamp: float


@numba.njit(cache=True)
def _positive_recent(items, weights, decay):  # noqa: ANN001, ANN202
    """Items with a positive weight, newest first, each once (at its newest weight),
    weighted ``weight * decay**p`` for ``p`` steps back from the newest interaction."""
    n = items.shape[0]
    out_items = np.empty(n, dtype=np.int64)
    out_weights = np.empty(n)
    kept = 0
    factor = 1.0
    for p in range(n - 1, -1, -1):
        if weights[p] > 0:
            item = items[p]
            repeat = False
            for q in range(kept):
                if out_items[q] == item:
                    repeat = True
                    break
            if not repeat:
                out_items[kept] = item
                out_weights[kept] = weights[p] * factor
                kept += 1
        factor *= decay
    return out_items[:kept], out_weights[:kept]


class _Ring:
    """One user's last interactions, each stored at slot ``s`` and slot ``s + size``.

    ``size`` starts at ``_FIRST_SIZE`` and doubles, up to the history's window,
    as the user acts: most users make a few events, and a full window for
    each would be most of a history's memory.
    """

    __slots__ = ("items", "weights", "times", "kinds", "count")

    def __init__(self, size: int) -> None:
        self.items = np.zeros(2 * size, dtype=np.int64)
        self.weights = np.zeros(2 * size)
        self.times = np.zeros(2 * size)
        self.kinds = np.zeros(2 * size, dtype=np.int16)  # codes of UserHistory._kinds
        self.count = 0  # interactions ever added (the ring holds the last ``size``)

    def __getstate__(self) -> tuple:
        return (self.items, self.weights, self.times, self.kinds, self.count)

    def __setstate__(self, state: tuple) -> None:
        self.items, self.weights, self.times, self.kinds, self.count = state

    @property
    def size(self) -> int:
        return self.items.shape[0] // 2

    def append(self, item: int, weight: float, time: float, kind: int, window: int) -> None:
        size = self.size
        if self.count == size and size < window:
            size = self._grown(min(2 * size, window))
        for slot in (self.count % size, self.count % size + size):
            self.items[slot] = item
            self.weights[slot] = weight
            self.times[slot] = time
            self.kinds[slot] = kind
        self.count += 1

    def _grown(self, size: int) -> int:
        """Room for ``size``; called when full before ever wrapping, so the held
        interactions are slots ``0..count-1``, in order."""
        held = self.count
        for name in self.__slots__[:-1]:
            old = getattr(self, name)
            new = np.zeros(2 * size, dtype=old.dtype)
            new[:held] = new[size : size + held] = old[:held]
            setattr(self, name, new)
        return size

    def span(self, n: int) -> slice:
        """Where the newest ``min(n, held)`` interactions lie, oldest first."""
        size = self.size
        n = min(n, self.count, size)
        end = self.count % size + size
        return slice(end - n, end)

    def last(self) -> int:
        """Where the newest interaction lies."""
        return (self.count - 1) % self.size


#: A new user's ring holds this many interactions before it first grows.
_FIRST_SIZE = 8


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
        self._rings: dict[int, _Ring] = {}
        self._kinds: list[str] = []  # event types, by the code the rings store
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
        """Load a pickle, also one from when recent interactions were deques of objects."""
        recent = state.pop("_recent", None)
        state.setdefault("_seen_arrays", {})
        state.setdefault("_rings", {})
        state.setdefault("_kinds", [])
        self.__dict__.update(state)
        for user, interactions in (recent or {}).items():
            for interaction in interactions:
                self._append(user, interaction.item, interaction.weight,
                             interaction.event_type, interaction.timestamp)  # fmt: skip

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, user: int, item: int, weight: float, event_type: str, timestamp: float) -> None:
        """Record one interaction of the user (the newest)."""
        if user not in self._seen:
            self._seen[user] = set()
        self._append(user, item, weight, event_type, timestamp)
        seen = self._seen[user]
        if item not in seen:
            seen.add(item)
            rows = self._seen_arrays.get(user)
            if rows is not None:
                if len(seen) > rows.shape[0]:
                    rows = self._seen_arrays[user] = grown(rows, len(seen))
                rows[len(seen) - 1] = item
        self._weighted.pop(user, None)

    def _append(self, user: int, item: int, weight: float, event_type: str, time: float) -> None:
        ring = self._rings.get(user)
        if ring is None:
            ring = self._rings[user] = _Ring(min(_FIRST_SIZE, self.window))
        try:
            kind = self._kinds.index(event_type)
        except ValueError:
            kind = len(self._kinds)
            self._kinds.append(event_type)
        ring.append(item, weight, time, kind, self.window)

    def recent(self, user: int) -> list[Interaction]:
        """The user's recent interactions, oldest first (built on demand: for explanations)."""
        ring = self._rings.get(user)
        if ring is None:
            return []
        span = ring.span(self.window)
        return [
            Interaction(item, weight, self._kinds[kind], time)
            for item, weight, kind, time in zip(
                ring.items[span].tolist(),
                ring.weights[span].tolist(),
                ring.kinds[span].tolist(),
                ring.times[span].tolist(),
                strict=True,
            )  # fmt: skip
        ]

    def recent_arrays(self, user: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Items and weights of the newest ``n`` (default: all held) interactions, oldest
        first, as views: read them before the user's next interaction is added."""
        ring = self._rings.get(user)
        if ring is None:
            return _EMPTY_INT, _EMPTY_FLOAT
        span = ring.span(self.window if n is None else n)
        return ring.items[span], ring.weights[span]

    def last_time(self, user: int) -> float | None:
        """Time of the user's newest interaction (None: none held)."""
        ring = self._rings.get(user)
        if ring is None or ring.count == 0:
            return None
        return float(ring.times[ring.last()])

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
            Two arrays of equal length, items unique, newest first.
        """
        cached = self._weighted.get(user, {}).get(decay)
        if cached is not None:
            return cached
        items, weights = self.recent_arrays(user)
        if not items.size:
            return _EMPTY_INT, _EMPTY_FLOAT
        result = _positive_recent(items, weights, decay)
        if not result[0].size:
            return _EMPTY_INT, _EMPTY_FLOAT
        self._weighted.setdefault(user, {})[decay] = result
        return result

    def forget(self, user: int) -> None:
        self._rings.pop(user, None)
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
            kept = [r for r in self.recent(user) if r.item not in gone]
            self._rings.pop(user, None)
            for r in kept:
                self._append(user, r.item, r.weight, r.event_type, r.timestamp)
            self._weighted.pop(user, None)

    def n_seen(self) -> int:
        """(user, item) pairs held in the seen sets."""
        return sum(len(seen) for seen in self._seen.values())


_EMPTY_INT = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT = np.zeros(0, dtype=np.float64)
