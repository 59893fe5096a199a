"""Incremental item-item co-occurrence: the item-based collaborative filter.

Two items co-occur when one user engages with both within a window of their
recent history. Counts are sparse (one neighbour list per item, never a dense
items x items matrix) and similarity is cosine-normalised:

    sim(a, b) = co(a, b) / sqrt(n(a) * n(b))

where ``n`` is the item's total engagement weight. A user's score for item
``j`` is ``sum_h r_h * sim(h, j)`` over their recent items ``h`` with recency
weights ``r_h``; :class:`~stream.signals.profiles.ItemCFProfiles` keeps that
sum up to date per user instead of recomputing it for every ranking.

Storage (:class:`PairTable`): every (item, neighbour) weight is one entry in
flat numpy arrays, found through an open-addressing hash table and chained
per item so a whole row can be walked. The loops over pairs are compiled
with numba: an event's ten pairs cost two dictionary probes each in Python,
which made this the most expensive step of learning. Additions happen in
the same order as before, so the weights are the same to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from stream.entities import grown

_NO_VECTORS = (np.zeros(0),)  # no carried vector (an empty one is skipped)
_NO_DECAYS = (1.0,)
_EMPTY = -1  # a hash slot never used
_DELETED = -2  # a hash slot whose entry was removed (probing goes on past it)
_FIBONACCI = np.uint64(11400714819323198485)  # 2**64 / golden ratio: spreads keys


@numba.njit(cache=True)
def _slot_of(keys, key, shift):  # noqa: ANN001, ANN202
    """Where ``key`` sits in the hash table, or -1."""
    mask = keys.shape[0] - 1
    at = np.int64((np.uint64(key) * _FIBONACCI) >> np.uint64(shift))
    while True:
        found = keys[at]
        if found == key:
            return at
        if found == _EMPTY:
            return -1
        at = (at + 1) & mask


@numba.njit(cache=True)
def _free_slot(keys, key, shift):  # noqa: ANN001, ANN202
    """A slot to put a ``key`` known to be absent: the first deleted or empty one."""
    mask = keys.shape[0] - 1
    at = np.int64((np.uint64(key) * _FIBONACCI) >> np.uint64(shift))
    while keys[at] >= 0:
        at = (at + 1) & mask
    return at


@numba.njit(cache=True)
def _add(
    source, target, amount, keys, entries, shift, head, length, target_of, value, next_of, used
):  # noqa: ANN001, ANN202, PLR0913, E501
    """``co(source, target) += amount``; returns the new number of used entries."""
    key = (source << 32) | target
    slot = _slot_of(keys, key, shift)
    if slot >= 0:
        value[entries[slot]] += amount
        return used
    slot = _free_slot(keys, key, shift)
    keys[slot] = key
    entries[slot] = used
    target_of[used] = target
    value[used] = amount
    # Chained at the front: O(1), and the order of a row never changes a
    # score (each neighbour appears once per row).
    next_of[used] = head[source]
    head[source] = used
    length[source] += 1
    return used + 1


@numba.njit(cache=True)
def _learn_pairs(  # noqa: ANN201, PLR0913
    item, weight, window_items, window_weights, closeness, distance_decay,  # noqa: ANN001
    keys, entries, shift, head, length, target_of, value, next_of, used,  # noqa: ANN001
):  # fmt: skip
    """Pair ``item`` with each window item, both directions (see ``ItemCooccurrence.learn``)."""
    for k in range(window_items.shape[0]):
        other = window_items[k]
        other_weight = window_weights[k]
        this_closeness = closeness
        closeness /= distance_decay
        if other == item or other_weight <= 0:
            continue
        if other >= head.shape[0]:
            raise IndexError("a window item has no row: reserve rows for it first")
        pair = (weight if weight < other_weight else other_weight) * this_closeness
        used = _add(
            item, other, pair, keys, entries, shift, head, length, target_of, value, next_of, used
        )  # noqa: E501
        used = _add(
            other, item, pair, keys, entries, shift, head, length, target_of, value, next_of, used
        )  # noqa: E501
    return used


@numba.njit(cache=True)
def _learn_and_carry(  # noqa: ANN201, PLR0913
    item, weight, window_items, window_weights, closeness, distance_decay,  # noqa: ANN001
    carried, decays, row_scale,  # noqa: ANN001
    keys, entries, shift, head, length, target_of, value, next_of, used,  # noqa: ANN001
):  # fmt: skip
    """:func:`_learn_pairs`, then each carried vector ``v`` (of ``carried``, empty
    ones skipped) becomes ``v * decay + row_scale * co(item, .)``: one call
    for what an engagement changes in the item-CF state."""
    used = _learn_pairs(
        item, weight, window_items, window_weights, closeness, distance_decay,
        keys, entries, shift, head, length, target_of, value, next_of, used,
    )  # fmt: skip
    for k in range(len(carried)):
        vector = carried[k]
        if vector.shape[0]:
            _scale_then_add_row(vector, decays[k], item, row_scale, head, target_of, value, next_of)
    return used


@numba.njit(cache=True)
def _add_both_ways(  # noqa: ANN201, PLR0913
    source, targets, amount,  # noqa: ANN001
    keys, entries, shift, head, length, target_of, value, next_of, used,  # noqa: ANN001
):  # fmt: skip
    """``co(source, t) += amount``, then ``co(t, source) += amount``, for each of
    ``targets`` in order (``source`` itself skipped)."""
    for k in range(targets.shape[0]):
        other = targets[k]
        if other == source:
            continue
        if other >= head.shape[0]:
            raise IndexError("a target has no row: reserve rows for it first")
        used = _add(
            source, other, amount,
            keys, entries, shift, head, length, target_of, value, next_of, used,
        )  # fmt: skip
        used = _add(
            other, source, amount,
            keys, entries, shift, head, length, target_of, value, next_of, used,
        )  # fmt: skip
    return used


@numba.njit(cache=True)
def _add_rows(out, items, scales, head, target_of, value, next_of):  # noqa: ANN001, ANN202
    """``out[j] += scales[r] * co(items[r], j)`` for every neighbour ``j``, row after row."""
    for r in range(items.shape[0]):
        scale = scales[r]
        at = head[items[r]]
        while at >= 0:
            out[target_of[at]] += scale * value[at]
            at = next_of[at]


@numba.njit(cache=True)
def _add_row(out, item, scale, head, target_of, value, next_of):  # noqa: ANN001, ANN202
    """``out[j] += scale * co(item, j)`` for every neighbour ``j`` of one row."""
    at = head[item]
    while at >= 0:
        out[target_of[at]] += scale * value[at]
        at = next_of[at]


@numba.njit(cache=True)
def _row_of(source, head, length, target_of, value, next_of):  # noqa: ANN001, ANN202
    """Targets and weights of one row, in chain order (newest first)."""
    targets = np.empty(length[source], dtype=np.int64)
    weights = np.empty(length[source])
    at, k = head[source], 0
    while at >= 0:
        targets[k] = target_of[at]
        weights[k] = value[at]
        at = next_of[at]
        k += 1
    return targets, weights


@numba.njit(cache=True)
def _scale_then_add_row(out, factor, item, scale, head, target_of, value, next_of):  # noqa: ANN001, ANN202
    """``out *= factor``, then ``out[j] += scale * co(item, j)`` (no row when ``item`` < 0)."""
    for j in range(out.shape[0]):
        out[j] *= factor
    if item >= 0:
        _add_row(out, item, scale, head, target_of, value, next_of)


@numba.njit(cache=True)
def _values_of(sources, target, keys, entries, shift, value):  # noqa: ANN001, ANN202
    """``co(source, target)`` for each of ``sources`` (0 where never paired)."""
    out = np.zeros(sources.shape[0])
    for r in range(sources.shape[0]):
        slot = _slot_of(keys, (sources[r] << 32) | target, shift)
        if slot >= 0:
            out[r] = value[entries[slot]]
    return out


@numba.njit(cache=True)
def _unlink(source, target, keys, entries, shift, head, length, target_of, value, next_of):  # noqa: ANN001, ANN202, E501
    """Remove ``co(source, target)`` from the hash table and from the row's chain.

    The entry's target and weight are blanked too: a forgotten id must not
    linger in memory until the next repack.
    """
    slot = _slot_of(keys, (source << 32) | target, shift)
    if slot < 0:
        return False
    entry = entries[slot]
    keys[slot] = _DELETED
    previous, at = -1, head[source]
    while at != entry:
        previous, at = at, next_of[at]
    if previous < 0:
        head[source] = next_of[entry]
    else:
        next_of[previous] = next_of[entry]
    length[source] -= 1
    target_of[entry] = -1
    value[entry] = 0.0
    return True


@numba.njit(cache=True)
def _forget(items, keys, entries, shift, head, length, target_of, value, next_of):  # noqa: ANN001, ANN202, E501
    """Drop the items' rows and their entries in their neighbours' rows; returns entries freed."""
    freed = 0
    for r in range(items.shape[0]):
        item = items[r]
        if item >= head.shape[0]:
            continue
        at = head[item]
        while at >= 0:
            other = target_of[at]
            if other != item and _unlink(
                other, item, keys, entries, shift, head, length, target_of, value, next_of
            ):
                freed += 1
            slot = _slot_of(keys, (item << 32) | other, shift)
            if slot >= 0:
                keys[slot] = _DELETED
            freed += 1
            target_of[at] = -1
            value[at] = 0.0
            at = next_of[at]
        head[item] = -1
        length[item] = 0
    return freed


@numba.njit(cache=True)
def _repack(head, target_of, value, next_of, capacity, table_size, shift):  # noqa: ANN001, ANN202
    """Live entries copied row by row into fresh arrays, with a fresh hash table."""
    new_target = np.zeros(capacity, dtype=np.int64)
    new_value = np.zeros(capacity)
    new_next = np.full(capacity, -1, dtype=np.int64)
    slots = _new_slots(table_size)
    keys, entries = slots[:, 0], slots[:, 1]
    new_head = np.full(head.shape[0], -1, dtype=np.int64)
    used = 0
    for source in range(head.shape[0]):
        at, last = head[source], -1
        while at >= 0:
            new_target[used] = target_of[at]
            new_value[used] = value[at]
            if last < 0:
                new_head[source] = used
            else:
                new_next[last] = used
            key = (source << 32) | target_of[at]
            slot = _free_slot(keys, key, shift)
            keys[slot] = key
            entries[slot] = used
            last = used
            used += 1
            at = next_of[at]
    return new_head, new_target, new_value, new_next, slots, used


@numba.njit(cache=True)
def _new_slots(table_size):  # noqa: ANN001, ANN202
    """An empty hash table: a row per slot, (key, entry index) side by side."""
    slots = np.zeros((table_size, 2), dtype=np.int64)
    slots[:, 0] = _EMPTY
    return slots


class PairTable:
    """Sparse ``co(source, target)`` weights: hashed for lookup, chained per source row.

    Entries are appended and never moved until a repack (when removed
    entries outnumber live ones, or the arrays are full); a row's chain runs
    from its newest neighbour to its oldest.

    Scoring walks whole rows, and a row whose entries lie scattered over the
    arrays costs a cache miss per entry: summing a user's history rows on
    MovieLens-100K took 4x longer from a table grown by appends than from one
    just repacked. So the table is also repacked, at the same capacity, once
    the entries appended since the last repack pass ``UNPACKED_SHARE`` of the
    live ones. A repack moves entries but never changes a row's set of
    (neighbour, weight) entries, so scores stay the same to the last bit.
    """

    #: Appended entries, as a share of the live ones, that trigger a repack for locality.
    UNPACKED_SHARE = 0.125
    #: ...and at least this many (small tables stay in cache anyway).
    MIN_UNPACKED = 4096
    packed = 0  # pickles from before locality repacks: everything counts as appended

    def __init__(self) -> None:
        self._shift = 64 - 10
        # The hash table: per slot, the key ((source << 32) | target) and the
        # index of its entry, side by side so that a probe reads one cache line.
        self._slots = _new_slots(1 << 10)
        self.head = np.zeros(0, dtype=np.int64)  # first entry of each row, -1: none
        self.length = np.zeros(0, dtype=np.int64)
        self.target = np.zeros(256, dtype=np.int64)
        self.value = np.zeros(256)
        self.next = np.full(256, -1, dtype=np.int64)
        self.used = 0  # entries ever appended since the last repack
        self.packed = 0  # of those, the ones laid out row by row by that repack
        self.live = 0
        self.hashed = 0  # hash slots not empty (live or deleted): what probing walks

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a pickle, also one from when keys and entries were two arrays."""
        keys, entries = state.pop("keys", None), state.pop("entries", None)
        self.__dict__.update(state)
        if keys is not None:
            self._slots = np.stack([keys, entries], axis=1)

    @property
    def keys(self) -> np.ndarray:
        """Each hash slot's key, ``(source << 32) | target`` (a view)."""
        return self._slots[:, 0]

    @property
    def entries(self) -> np.ndarray:
        """Each hash slot's entry index (a view)."""
        return self._slots[:, 1]

    def reserve(self, rows: int, new_entries: int) -> None:
        """Room for rows ``0..rows-1`` and ``new_entries`` more entries (before a compiled call)."""
        if rows > self.head.shape[0]:
            self.head = grown(self.head, rows, fill=-1)
            self.length = grown(self.length, rows)
        if self.used + new_entries > self.target.shape[0] or (
            (self.hashed + new_entries) * 2 > self._slots.shape[0]
        ):
            self._repack(self.live + new_entries)
        elif self.used - self.packed > max(self.MIN_UNPACKED, self.live * self.UNPACKED_SHARE):
            # Rows made contiguous again, at the same sizes.
            self._rebuild(self.target.shape[0], self._slots.shape[0].bit_length() - 1)

    def _repack(self, needed: int) -> None:
        """Resize to room for ``needed`` entries and half as many again, with a hash
        table at most half full, and lay the live entries out row by row."""
        self._rebuild(max(256, needed + needed // 2), max(10, int(2 * needed - 1).bit_length()))

    def _rebuild(self, capacity: int, table_bits: int) -> None:
        self._shift = 64 - table_bits
        head, target, value, nxt, slots, used = _repack(
            self.head, self.target, self.value, self.next, capacity, 1 << table_bits, self._shift
        )
        self.head, self.target, self.value, self.next = head, target, value, nxt
        self._slots = slots
        self.used = self.live = self.hashed = self.packed = used

    def add_pairs(
        self,
        item: int,
        weight: float,
        window_items: np.ndarray,
        window_weights: np.ndarray,
        closeness: float,
        distance_decay: float,
    ) -> None:
        rows = max(item, int(window_items.max()) if window_items.size else 0) + 1
        self.reserve(rows, 2 * window_items.shape[0])
        used = _learn_pairs(
            item, weight, window_items, window_weights, closeness, distance_decay,
            self.keys, self.entries, self._shift, self.head, self.length,
            self.target, self.value, self.next, self.used,
        )  # fmt: skip
        added = used - self.used
        self.used = used
        self.live += added
        self.hashed += added

    def add_pairs_and_carry(  # noqa: PLR0913
        self,
        item: int,
        weight: float,
        window_items: np.ndarray,
        window_weights: np.ndarray,
        closeness: float,
        distance_decay: float,
        carried: tuple[np.ndarray, ...],
        decays: tuple[float, ...],
        row_scale: float,
        rows: int,
    ) -> None:
        """:meth:`add_pairs`, then ``v = v * decay + row_scale * co(item, .)`` for each
        carried vector (empty ones skipped), in one compiled call. ``rows``: more than
        ``item`` and every window item with a positive weight (the caller knows
        a bound; an item beyond it is an IndexError)."""
        self.reserve(rows, 2 * window_items.shape[0])
        used = _learn_and_carry(
            item, weight, window_items, window_weights, closeness, distance_decay,
            carried, decays, row_scale,
            self.keys, self.entries, self._shift, self.head, self.length,
            self.target, self.value, self.next, self.used,
        )  # fmt: skip
        added = used - self.used
        self.used = used
        self.live += added
        self.hashed += added

    def add_both_ways(self, source: int, targets: np.ndarray, amount: float) -> None:
        """``co(source, t)`` and ``co(t, source)`` each grow by ``amount`` for every
        target but ``source``, in one compiled call. Every target must already
        have a row (have been a source before), as user-user overlaps do."""
        self.reserve(source + 1, 2 * targets.shape[0])
        used = _add_both_ways(
            source, targets, amount, self.keys, self.entries, self._shift, self.head,
            self.length, self.target, self.value, self.next, self.used,
        )  # fmt: skip
        added = used - self.used
        self.used = used
        self.live += added
        self.hashed += added

    def add_one(self, source: int, target: int, amount: float) -> None:
        """``co(source, target) += amount``, one direction only."""
        self.reserve(max(source, target) + 1, 1)
        used = _add(
            source, target, amount, self.keys, self.entries, self._shift, self.head,
            self.length, self.target, self.value, self.next, self.used,
        )  # fmt: skip
        self.live += used - self.used
        self.hashed += used - self.used
        self.used = used

    def add_row(self, out: np.ndarray, item: int, scale: float) -> None:
        if item < self.head.shape[0]:
            _add_row(out, item, scale, self.head, self.target, self.value, self.next)

    def add_rows(self, out: np.ndarray, items: np.ndarray, scales: np.ndarray) -> None:
        if items.size and int(items.max()) >= self.head.shape[0]:
            keep = items < self.head.shape[0]
            items, scales = items[keep], scales[keep]
        _add_rows(out, items, scales, self.head, self.target, self.value, self.next)

    def values(self, sources: np.ndarray, target: int) -> np.ndarray:
        return _values_of(sources, target, self.keys, self.entries, self._shift, self.value)

    def row(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets and weights of one row, newest neighbour first."""
        if not 0 <= source < self.head.shape[0]:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return _row_of(source, self.head, self.length, self.target, self.value, self.next)

    def forget(self, items: np.ndarray) -> None:
        freed = _forget(
            items, self.keys, self.entries, self._shift, self.head, self.length,
            self.target, self.value, self.next,
        )  # fmt: skip
        self.live -= freed
        if self.live < (self.used - self.live):
            self._repack(self.live)

    def row_length(self, source: int) -> int:
        return int(self.length[source]) if source < self.length.shape[0] else 0


class ItemCooccurrence:
    """Sparse, windowed item co-occurrence with cosine scoring.

    Parameters
    ----------
    max_pairs_per_event
        An event pairs its item with at most this many of the user's most
        recent items (the window), which bounds the cost of one update.
    distance_decay
        Pair weight factor per step apart in the user's sequence.
    alpha
        Asymmetric cosine: ``sim(h, j) = co(h, j) / (n(h)**alpha * n(j)**(1 - alpha))``;
        0.5 is the plain cosine; higher values penalise popular targets ``j``
        less (Aiolli, 2013). On MovieLens-100K 0.5 did best (0.3: 0.167,
        0.5: 0.179, 0.7: 0.179, 1.0: 0.169 HR@10 over the first 30,000 events).

    >>> cf = ItemCooccurrence()
    >>> cf.learn(0, 1.0, recent_items=[], recent_weights=[])      # user A: 0, then 1
    >>> cf.learn(1, 1.0, recent_items=[0], recent_weights=[1.0])
    >>> cf.learn(0, 1.0, recent_items=[], recent_weights=[])      # user B: 0, then 2
    >>> cf.learn(2, 1.0, recent_items=[0], recent_weights=[1.0])
    >>> cf.learn(2, 1.0, recent_items=[], recent_weights=[])      # user C: 2 alone
    >>> cf.score(np.array([0]), np.array([1.0]), n_items=3).round(3).tolist()
    [0.0, 0.707, 0.5]
    """

    def __init__(
        self, max_pairs_per_event: int = 50, distance_decay: float = 1.0, alpha: float = 0.5
    ) -> None:
        self.alpha = alpha
        self.max_pairs_per_event = max_pairs_per_event
        self.distance_decay = distance_decay
        self._pairs = PairTable()
        self._totals = np.zeros(0)
        # n(j) ** (alpha - 1), kept current one entry per event instead of
        # recomputed over the catalog for every ranking.
        self._inverse = np.zeros(0)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a pickle, also one from before :class:`PairTable` (rows of ``_Neighbours``)."""
        rows = state.pop("_rows", None)
        self.__dict__.update(state)
        if rows is not None:
            self._pairs = PairTable()
            for source, row in enumerate(rows):
                for target, weight in zip(row.ids.tolist(), row.vals.tolist(), strict=True):
                    self._pairs.add_one(source, target, weight)

    def learn(
        self,
        item: int,
        weight: float,
        recent_items: list[int] | np.ndarray,
        recent_weights: list[float] | np.ndarray,
        carried: Sequence[tuple[np.ndarray, float]] = (),
    ) -> None:
        """Fold in one engagement of ``item`` by a user whose recent items are given.

        A pair is as strong as its weaker engagement, so a glance at one item
        does not tie it firmly to a purchase of another. Items engaged with
        right before count most: a pair's weight decays with the distance in
        the user's sequence (``distance_decay``; 1.0 = no decay).

        ``carried``: the user's carried item-CF score vectors with their decays
        (:meth:`~stream.signals.profiles.ItemCFProfiles.carried`). Each takes
        this event's step in the same compiled call: ``v = decay * v`` plus,
        for an engagement, the item's new row scaled as :meth:`add_row_to` does.
        """
        if weight <= 0:
            for vector, decay in carried:
                vector *= decay
            return
        self._totals = grown(self._totals, item + 1)
        self._inverse = grown(self._inverse, item + 1)
        self._totals[item] += weight
        self._inverse[item] = self._totals[item] ** (self.alpha - 1.0)
        window_items = np.asarray(recent_items[-self.max_pairs_per_event :], dtype=np.int64)
        window_weights = np.asarray(recent_weights[-self.max_pairs_per_event :], dtype=np.float64)
        closeness = self.distance_decay ** (len(window_items) - 1)
        self._pairs.add_pairs_and_carry(
            item, weight, window_items, window_weights, closeness, self.distance_decay,
            tuple(vector for vector, _ in carried) or _NO_VECTORS,
            tuple(decay for _, decay in carried) or _NO_DECAYS,
            weight / self._totals[item] ** self.alpha,
            # Every item engaged with has a total, so the totals bound the rows.
            self._totals.shape[0],
        )  # fmt: skip

    def _engaged_rows(
        self, items: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Items with a row (engaged with), their weights, and ``n(item) ** alpha``."""
        items = np.asarray(items, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        known = items < self._totals.shape[0]
        items, weights = items[known], weights[known]
        totals = self._totals[items]
        engaged = totals > 0
        return items[engaged], weights[engaged], np.power(totals[engaged], self.alpha)

    def add_row_to(self, out: np.ndarray, item: int, scale: float) -> None:
        """``out[j] += scale * co(item, j) / sqrt(n(item))`` for every neighbour ``j``.

        The ``1/sqrt(n(j))`` half of the cosine is left to the caller
        (:meth:`inverse_norms`), which applies it once to a whole score vector.
        """
        if item >= self._totals.shape[0] or self._totals[item] <= 0:
            return
        self._pairs.add_row(out, item, scale / self._totals[item] ** self.alpha)

    def add_rows_to(self, out: np.ndarray, items: np.ndarray, scales: np.ndarray) -> None:
        """:meth:`add_row_to` for each of ``items`` with its scale, in order."""
        items, scales, norms = self._engaged_rows(items, scales)
        if items.size:
            self._pairs.add_rows(out, items, scales / norms)

    def score(self, items: np.ndarray, weights: np.ndarray, n_items: int) -> np.ndarray:
        """Scores of items ``0..n_items-1`` for a user whose weighted history is given."""
        out = np.zeros(n_items)
        self.add_rows_to(out, items, weights)
        out *= self.inverse_norms(n_items)
        return out

    def strongest_source(self, target: int, items: np.ndarray, weights: np.ndarray) -> int | None:
        """The history item contributing most to ``target``'s score: the "because" of a reason."""
        items, weights, norms = self._engaged_rows(items, weights)
        if not items.size:
            return None
        values = weights * self._pairs.values(items, target) / norms
        best = int(np.argmax(values))  # the first of equal values, as a scan would pick
        return int(items[best]) if values[best] > 0 else None

    def similarity(self, a: int, b: int) -> float:
        if max(a, b) >= self._totals.shape[0]:
            return 0.0
        norm = (self._totals[a] * self._totals[b]) ** 0.5
        return float(self._pairs.values(np.array([a]), b)[0]) / norm if norm > 0 else 0.0

    def inverse_norms(self, n_items: int) -> np.ndarray:
        """``n(j) ** (alpha - 1)`` for items ``0..n_items-1`` (0 for items never engaged with)."""
        known = min(n_items, self._inverse.shape[0])
        if known == n_items:
            return self._inverse[:n_items]
        out = np.zeros(n_items)
        out[:known] = self._inverse[:known]
        return out

    def totals(self, n_items: int) -> np.ndarray:
        """Total engagement weight per item (the cosine's ``n``)."""
        out = np.zeros(n_items)
        known = min(n_items, self._totals.shape[0])
        out[:known] = self._totals[:known]
        return out

    def forget_items(self, items: np.ndarray) -> None:
        """Remove expired items: their rows, and their entries in their neighbours' rows."""
        items = np.asarray(items, dtype=np.int64)
        self._pairs.forget(items)
        items = items[items < self._totals.shape[0]]
        self._totals[items] = 0.0
        self._inverse[items] = 0.0

    def n_pairs(self) -> int:
        """Stored (item, neighbour) entries: the memory this signal holds."""
        return self._pairs.live


class _Neighbours:
    """A row of the storage before :class:`PairTable`, kept so that old checkpoints load."""

    __slots__ = ("slot", "ids", "vals")

    def __setstate__(self, state: Any) -> None:
        slots = state[1] if isinstance(state, tuple) else state
        for name, value in slots.items():
            setattr(self, name, value)
