"""The live service's own prequential score: did we predict what the user did next?

Before an event is learned, its item is checked against the last list the
service published for that user. The share of hits over a rolling window is
the online hit rate: the same test-then-learn protocol as the offline
evaluator, measured on live traffic. (Checking after learning would leak the
answer into the prediction.)
"""

from __future__ import annotations

from collections import deque

import numpy as np


class RollingHitRate:
    """Hit rate of published top-k lists against the next events, over a window.

    Parameters
    ----------
    k
        Length of the lists published (hits are counted in the top ``k``).
    window
        Number of most recent scored events the rate is computed over.

    >>> hits = RollingHitRate(k=2, window=3)
    >>> hits.published("u1", ["a", "b"])
    >>> hits.observe("u1", "b"), hits.observe("u1", "c"), hits.observe("u2", "a")
    (True, False, None)
    >>> hits.rate
    0.5
    """

    def __init__(self, k: int = 10, window: int = 1000) -> None:
        self.k = k
        self.window = window
        self._last_lists: dict[str, frozenset[str]] = {}
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._hits_in_window = 0
        self.scored = 0
        self.hits = 0

    def observe(self, user_id: str, item_id: str) -> bool | None:
        """Score one event before it is learned; None when the user had no list yet."""
        last = self._last_lists.get(user_id)
        if last is None:
            return None
        hit = item_id in last
        if len(self._outcomes) == self.window and self._outcomes[0]:
            self._hits_in_window -= 1
        self._outcomes.append(hit)
        self._hits_in_window += hit
        self.scored += 1
        self.hits += hit
        return hit

    def published(self, user_id: str, item_ids: list[str]) -> None:
        self._last_lists[user_id] = frozenset(item_ids[: self.k])

    def forget(self, user_id: str) -> None:
        self._last_lists.pop(user_id, None)

    @property
    def rate(self) -> float:
        """Hit rate over the window."""
        return self._hits_in_window / len(self._outcomes) if self._outcomes else 0.0

    @property
    def overall_rate(self) -> float:
        """Hit rate over every event scored so far."""
        return self.hits / self.scored if self.scored else 0.0


class RollingAUC:
    """ROC AUC of one task's predictions over the most recent labelled events.

    Exact (rank-based, ties averaged) over a window, computed on demand: the
    service reads it once per batch, not per event.

    >>> auc = RollingAUC(window=4)
    >>> for score, label in [(0.9, 1), (0.2, 0), (0.8, 1), (0.3, 0)]:
    ...     auc.add(score, label)
    >>> auc.value()
    1.0
    """

    def __init__(self, window: int = 2000) -> None:
        self.window = window
        self._scores: deque[float] = deque(maxlen=window)
        self._labels: deque[int] = deque(maxlen=window)

    def add(self, score: float, label: int) -> None:
        self._scores.append(score)
        self._labels.append(label)

    def value(self) -> float | None:
        """AUC over the window; None until both classes have been seen."""
        labels = np.fromiter(self._labels, dtype=np.int8, count=len(self._labels))
        positives = int(labels.sum())
        negatives = labels.size - positives
        if positives == 0 or negatives == 0:
            return None
        scores = np.fromiter(self._scores, dtype=np.float64, count=len(self._scores))
        order = np.argsort(scores, kind="mergesort")
        ranks = np.empty(scores.size)
        ranks[order] = np.arange(1, scores.size + 1)
        # Average the ranks of tied scores.
        sorted_scores = scores[order]
        boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
        for group in np.split(order, boundaries):
            if group.size > 1:
                ranks[group] = ranks[group].mean()
        rank_sum = ranks[labels == 1].sum()
        return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))
