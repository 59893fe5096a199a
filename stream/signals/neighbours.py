"""User-based collaborative filtering over recent neighbours, learned incrementally.

Two users are neighbours when they engage with the same items. Each item
remembers its last few engagers; when a user engages with an item, their
overlap with each of those recent engagers grows. Similarity is cosine:

    sim(u, v) = overlap(u, v) / sqrt(n(u) * n(v))

A user's score for item ``j`` sums, over their top neighbours, the
neighbour's similarity times the neighbour's recency-weighted engagement
with ``j``. The neighbour list is cached and rebuilt every ``refresh_every``
of the user's events, so ranking does not sort all overlaps each time.

Overlaps are kept in a :class:`~stream.signals.cooccurrence.PairTable` (the
item co-occurrence's store, here over pairs of users): an engagement updates
one overlap in each direction per recent engager in one compiled call, where
Python dicts cost two lookups each. A row's entries come back in the order
they were first added (the order a dict keeps), which decides between
neighbours of equal similarity, so the neighbours are the ones a dict of
overlaps gave.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numba
import numpy as np

from stream.entities import grown
from stream.signals.bounded import DEFAULT_BUDGET_MB, BoundedVectors
from stream.signals.cooccurrence import PairTable

_EMPTY_INT = np.zeros(0, dtype=np.int64)


@numba.njit(cache=True)
def _add_weighted_recents(out, items, weights, lengths, sims):  # noqa: ANN001, ANN202
    """``out[j] += sims[r] * weight`` for each neighbour ``r``'s recent items ``j``, in order.

    ``items`` and ``weights`` are the neighbours' recent items laid end to
    end, ``lengths[r]`` of them each; items beyond ``out`` are skipped. One
    compiled pass instead of four numpy calls per neighbour, with the same
    additions in the same order (each neighbour's items are unique).
    """
    n_items = out.shape[0]
    at = 0
    for r in range(lengths.shape[0]):
        sim = sims[r]
        for k in range(at, at + lengths[r]):
            if items[k] < n_items:
                out[items[k]] += sim * weights[k]
        at += lengths[r]


class UserNeighbourhood:
    """Incremental cosine user-user similarity over recent co-engagement.

    Parameters
    ----------
    engagers_per_item
        Recent engagers each item remembers: the users a new engagement is
        compared with (bounds the cost of one update).
    n_neighbours
        Neighbours whose recent items are summed when scoring.
    refresh_every
        Rebuild a user's neighbour list after this many of their events.
    budget_mb
        Memory for the users' cached score vectors (one float per item each):
        past it, the least recently ranked users' are dropped and rebuilt
        when needed (:mod:`stream.signals.bounded`).

    >>> nb = UserNeighbourhood()
    >>> for user, item in [(0, 10), (1, 10), (0, 11), (1, 11), (1, 12), (2, 13)]:
    ...     nb.learn(user, item, 1.0)
    >>> nb.neighbours(0)[0].tolist()
    [1]
    """

    def __init__(
        self,
        engagers_per_item: int = 30,
        n_neighbours: int = 30,
        refresh_every: int = 8,
        budget_mb: float = DEFAULT_BUDGET_MB,
    ) -> None:
        self.engagers_per_item = engagers_per_item
        self.n_neighbours = n_neighbours
        self.refresh_every = refresh_every
        self._engagers: dict[int, deque[int]] = {}
        self._overlaps = PairTable()  # (user, other user) -> overlap
        self._totals = np.zeros(0)  # engagement weight per user row (0: none yet)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._score_cache = BoundedVectors(budget_mb)
        self._since_refresh: dict[int, int] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a pickle, also one from before the overlaps were a :class:`PairTable`."""
        overlap = state.pop("_overlap", None)
        totals = state.get("_totals")
        self.__dict__.update(state)
        if isinstance(self._score_cache, dict):  # a pickle from before the budget
            self._score_cache = BoundedVectors.of(self._score_cache)
        if overlap is not None:
            self._overlaps = PairTable()
            for user, row in overlap.items():
                for other, value in row.items():  # in the dict's order, which the table keeps
                    self._overlaps.add_one(user, other, value)
        if isinstance(totals, dict):
            self._totals = np.zeros(max(totals, default=-1) + 1)
            for user, total in totals.items():
                self._totals[user] = total
        self._overlaps.reserve(self._totals.shape[0], 0)  # every engaged user has a row

    def learn(self, user: int, item: int, weight: float) -> None:
        if weight <= 0:
            return
        self._totals = grown(self._totals, user + 1)
        self._totals[user] += weight
        # The user's row exists from their first engagement on: they may be
        # another user's target before they have an overlap of their own.
        self._overlaps.reserve(user + 1, 0)
        engagers = self._engagers.get(item)
        if engagers is None:
            engagers = self._engagers[item] = deque(maxlen=self.engagers_per_item)
        if engagers:
            # Each distinct recent engager once, in the order a set of them
            # iterates (which orders the user's new neighbours in their row).
            # Engagers have learned before, so their rows exist (see above).
            others = np.fromiter(set(engagers), dtype=np.int64, count=-1)
            self._overlaps.add_both_ways(user, others, weight)
        engagers.append(user)
        self._since_refresh[user] = self._since_refresh.get(user, 0) + 1

    def neighbours(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's top neighbours and their cosine similarities (cached)."""
        cached = self._cache.get(user)
        if cached is not None and self._since_refresh.get(user, 0) < self.refresh_every:
            return cached
        others, counts = self._overlaps.row(user)
        if not others.size:
            result = (_EMPTY_INT, np.zeros(0))
        else:
            # Oldest neighbour first, as a dict of overlaps would list them:
            # argpartition's choice among equal similarities depends on it.
            others, counts = others[::-1], counts[::-1]
            totals = self._totals[others]
            totals[totals == 0.0] = 1.0
            sims = counts / np.sqrt(self._total(user) * totals)
            take = min(self.n_neighbours, sims.size)
            top = np.argpartition(-sims, take - 1)[:take]
            result = (others[top], sims[top])
        self._cache[user] = result
        self._since_refresh[user] = 0
        return result

    def _total(self, user: int) -> float:
        """The user's engagement weight (1.0 when none: a cosine's neutral norm)."""
        total = float(self._totals[user]) if user < self._totals.shape[0] else 0.0
        return total if total > 0 else 1.0

    def scores(
        self,
        user: int,
        n_items: int,
        recent_of: Callable[[int], tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """``sum_v sim(u, v) * r_v(j)`` over the top neighbours ``v``, for every item ``j``.

        ``recent_of(v)`` gives a neighbour's recency-weighted recent items.
        The vector is rebuilt with the neighbour list, so between refreshes it
        reads what the neighbours had done at the last refresh.
        """
        fresh = self._since_refresh.get(user, 0) < self.refresh_every
        cached = self._score_cache.get(user)
        if fresh and cached is not None and cached.shape[0] >= n_items:
            return cached[:n_items]
        others, sims = self.neighbours(user)
        out = np.zeros(n_items)
        if others.size:
            recents = [recent_of(other) for other in others.tolist()]
            lengths = np.fromiter((items.size for items, _ in recents), np.int64, len(recents))
            _add_weighted_recents(
                out,
                np.concatenate([items for items, _ in recents]),
                np.concatenate([weights for _, weights in recents]),
                lengths,
                sims,
            )
        self._score_cache.put(user, out)
        return out

    def forget(self, user: int, items: Iterable[int] | None = None) -> None:
        """Remove the user from every overlap, engager list and cache.

        ``items``: the items the user engaged with (their history), the only
        engager lists the user can be in; None searches every list.
        """
        others, _ = self._overlaps.row(user)
        self._overlaps.forget(np.array([user], dtype=np.int64))
        for other in others.tolist():
            # The neighbour's cached list and scores were built with this user.
            self._cache.pop(other, None)
            self._score_cache.pop(other)
        lists = (
            self._engagers.values()
            if items is None
            else [e for e in (self._engagers.get(i) for i in items) if e is not None]
        )
        for engagers in lists:
            if user in engagers:
                kept = [u for u in engagers if u != user]
                engagers.clear()
                engagers.extend(kept)
        if user < self._totals.shape[0]:
            self._totals[user] = 0.0
        self._cache.pop(user, None)
        self._score_cache.pop(user)
        self._since_refresh.pop(user, None)

    def forget_items(self, items: np.ndarray) -> None:
        """Drop expired items' engager lists; cached score vectors are rebuilt without them."""
        for item in items.tolist():
            self._engagers.pop(item, None)
        for vector in self._score_cache.values():
            vector[items[items < vector.shape[0]]] = 0.0

    def n_overlaps(self) -> int:
        """(user, neighbour) overlap entries held: the memory this signal holds."""
        return self._overlaps.live
