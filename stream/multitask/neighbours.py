"""Item-to-item neighbours: a bounded list per item, kept up to date one event at a time."""

from __future__ import annotations

import numpy as np

from stream.entities import grown
from stream.multitask.kernels import drop_targets, learn_pairs, merge_pairs

_EMPTY = np.zeros(0, dtype=np.int64)


class ItemNeighbours:
    """Each item's strongest co-engaged items (item-based CF without an items x items table).

    An engagement is paired with the user's recent items; each pair adds to
    both items' lists, which hold between ``size`` and ``2 * size`` entries
    and drop their lightest half when full
    (:func:`~stream.multitask.kernels.bounded_add`). Memory is
    ``items x 2 size`` and an event costs ``window x 2 size``, whatever the
    catalog's size.

    Parameters
    ----------
    size
        Neighbours an item keeps for sure (it holds up to twice as many).
    distance_decay
        A pair's weight is multiplied by this per step apart the two items are
        in the user's sequence.
    alpha
        Cosine-like normalisation: ``pair / (total_a ** alpha * total_b ** (1 - alpha))``.
    """

    def __init__(self, size: int = 64, distance_decay: float = 1.0, alpha: float = 0.5) -> None:
        self.size = size
        self.distance_decay = distance_decay
        self.alpha = alpha
        self.ids = np.full((0, 2 * size), -1, dtype=np.int32)
        self.weights = np.zeros((0, 2 * size), dtype=np.float32)
        self.totals = np.zeros(0)
        self.inverse = np.zeros(0)  # totals ** (alpha - 1), kept current

    def reserve(self, rows: int) -> None:
        """Room for items ``0..rows-1`` (so compiled readers can index any of them)."""
        self._ensure(rows)

    def _ensure(self, rows: int) -> None:
        if rows > self.totals.shape[0]:
            self.ids = grown(self.ids, rows, fill=-1)
            self.weights = grown(self.weights, rows)
            self.totals = grown(self.totals, rows)
            self.inverse = grown(self.inverse, rows)

    def learn(
        self, item: int, weight: float, window: np.ndarray, window_weights: np.ndarray
    ) -> np.ndarray:
        """Pair an engagement of ``weight`` with the user's recent items (newest last);
        returns what each pair added (0 where none)."""
        window = np.asarray(window, dtype=np.int64)
        window_weights = np.asarray(window_weights, dtype=np.float64)
        self._ensure(max(item, int(window.max()) if window.size else 0) + 1)
        amounts = np.zeros(window.shape[0])
        learn_pairs(
            self.ids, self.weights, self.totals, self.inverse, self.alpha, item, weight, window,
            window_weights, self.distance_decay, amounts,
        )  # fmt: skip
        return amounts

    def merge(self, item: int, total: float, others: np.ndarray, amounts: np.ndarray) -> None:
        """Add another model's pair weights of ``item`` (to ``others``) and its engagement."""
        others = np.asarray(others, dtype=np.int64)
        self._ensure(max(item, int(others.max()) if others.size else 0) + 1)
        merge_pairs(
            self.ids, self.weights, self.totals, self.inverse, self.alpha, item, float(total),
            others, np.asarray(amounts, dtype=np.float64),
        )  # fmt: skip

    def neighbours(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The item's ``k`` strongest neighbours and their normalised weights, best first."""
        if item >= self.totals.shape[0] or self.totals[item] <= 0:
            return _EMPTY, np.zeros(0)
        held = self.ids[item] >= 0
        items = self.ids[item][held].astype(np.int64)
        totals = self.totals[items]
        scores = np.zeros(items.shape[0])
        positive = totals > 0
        scores[positive] = self.weights[item][held][positive] / (
            self.totals[item] ** self.alpha * totals[positive] ** (1 - self.alpha)
        )
        order = np.lexsort((items, -scores))[:k]
        return items[order], scores[order]

    def similarity(self, a: int, b: int) -> float:
        """The normalised pair weight of ``b`` in ``a``'s list (0 when not held)."""
        if a >= self.totals.shape[0] or b >= self.totals.shape[0]:
            return 0.0
        hit = np.flatnonzero(self.ids[a] == b)
        if not hit.size or self.totals[a] <= 0 or self.totals[b] <= 0:
            return 0.0
        norm = self.totals[a] ** self.alpha * self.totals[b] ** (1 - self.alpha)
        return float(self.weights[a, hit[0]] / norm)

    def forget_items(self, rows: np.ndarray) -> None:
        """Drop expired items: their own lists and their entries in their neighbours' lists."""
        rows = rows[rows < self.totals.shape[0]]
        if not rows.size:
            return
        gone = np.zeros(self.totals.shape[0], dtype=bool)
        gone[rows] = True
        holders = np.unique(self.ids[rows][self.ids[rows] >= 0])  # lists are symmetric
        drop_targets(self.ids, self.weights, holders, gone)
        self.ids[rows] = -1
        self.weights[rows] = 0.0
        self.totals[rows] = 0.0
        self.inverse[rows] = 0.0

    def n_pairs(self) -> int:
        return int((self.ids >= 0).sum())
