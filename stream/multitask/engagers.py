"""Each item's latest engagers: the bridge from a user's items to similar users."""

from __future__ import annotations

import numpy as np

from stream.entities import grown
from stream.multitask.kernels import ring_push


class RecentEngagers:
    """The last ``size`` users who engaged positively with each item (a ring per item).

    User-based CF reads it: users who just engaged with what this user just
    engaged with, and what else they did (:func:`~stream.multitask.kernels.neighbour_user_items`).

    Parameters
    ----------
    size
        Engagers kept per item.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.rings = np.full((0, size), -1, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)

    def reserve(self, rows: int) -> None:
        """Room for items ``0..rows-1`` (so compiled readers can index any of them)."""
        self._ensure(rows)

    def _ensure(self, rows: int) -> None:
        if rows > self.counts.shape[0]:
            self.rings = grown(self.rings, rows, fill=-1)
            self.counts = grown(self.counts, rows)

    def learn(self, item: int, user: int) -> None:
        self._ensure(item + 1)
        ring = self.rings[item]
        held = min(int(self.counts[item]), self.size)
        if held and ring[(int(self.counts[item]) - 1) % self.size] == user:
            return  # the same user again: a session of events on one item is one engagement
        ring_push(self.rings, self.counts, item, user)

    def forget_user(self, user: int, items: np.ndarray) -> None:
        """Take the user out of the rings of the items they engaged with."""
        items = items[items < self.counts.shape[0]]
        rings = self.rings[items]
        rings[rings == user] = -1
        self.rings[items] = rings

    def forget_items(self, rows: np.ndarray) -> None:
        rows = rows[rows < self.counts.shape[0]]
        self.rings[rows] = -1
        self.counts[rows] = 0
