"""Exponentially decayed item popularity, the ranking for users without history."""

from __future__ import annotations

import math

import numpy as np

from stream.entities import grown


class DecayedPopularity:
    """Sum of event weights per item, each decayed by its age in event time.

    Scores are kept multiplied by ``exp(rate * (t - t_ref))`` so that an event
    adds one term and no stored score is touched; the reference time moves
    forward (one rescale of the array) only when that factor would overflow.

    Parameters
    ----------
    half_life
        Seconds of event time after which an interaction counts half.

    >>> pop = DecayedPopularity(half_life=10.0)
    >>> pop.learn(0, 1.0, timestamp=0.0)
    >>> pop.learn(1, 1.0, timestamp=10.0)
    >>> pop.scores(2).round(3).tolist()
    [0.5, 1.0]
    """

    def __init__(self, half_life: float = 3 * 86400.0) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be > 0")
        self.half_life = half_life
        self._rate = math.log(2.0) / half_life
        self._ref_time: float | None = None
        self._now = -math.inf
        self._scaled = np.zeros(0)
        # The largest stored score: decay scales every score alike, so an
        # item's score relative to the top one needs no pass over the catalog.
        self._top = 0.0

    def learn(self, item: int, weight: float, timestamp: float) -> None:
        if weight <= 0:
            return  # a dislike says nothing about what is popular
        if self._ref_time is None:
            self._ref_time = timestamp
        exponent = self._rate * (timestamp - self._ref_time)
        if exponent > 50.0:
            # Rebase before exp() overflows: one pass over the array, rarely.
            self._scaled *= math.exp(-exponent)
            self._top *= math.exp(-exponent)
            self._ref_time = timestamp
            exponent = 0.0
        self._scaled = grown(self._scaled, item + 1)
        self._scaled[item] += weight * math.exp(exponent)
        self._top = max(self._top, float(self._scaled[item]))
        self._now = max(self._now, timestamp)

    def reserve(self, rows: int) -> None:
        """Room for items ``0..rows-1`` (so compiled readers can index any of them)."""
        self._scaled = grown(self._scaled, rows)

    def scores(self, n_items: int) -> np.ndarray:
        """Popularity of items ``0..n_items-1`` as of the newest event seen."""
        out = np.zeros(n_items)
        known = min(n_items, self._scaled.shape[0])
        if known and self._ref_time is not None:
            out[:known] = self._scaled[:known] * math.exp(
                -self._rate * (self._now - self._ref_time)
            )
        return out

    def relative(self, items: np.ndarray) -> np.ndarray:
        """Scores of ``items`` divided by the top item's (0 where unknown or nothing learned).

        >>> pop = DecayedPopularity(half_life=10.0)
        >>> pop.learn(0, 1.0, timestamp=0.0)
        >>> pop.learn(1, 1.0, timestamp=10.0)
        >>> pop.relative(np.arange(3)).round(3).tolist()
        [0.5, 1.0, 0.0]
        """
        known = items < self._scaled.shape[0]
        if self._top <= 0:
            return np.zeros(items.shape[0])
        if known.all():
            return self._scaled[items] / self._top
        out = np.zeros(items.shape[0])
        out[known] = self._scaled[items[known]] / self._top
        return out

    def scaled_and_top(self) -> tuple[np.ndarray, float]:
        """The stored (scaled) scores and the top one: ``scaled / top`` is :meth:`relative`.

        For compiled loops that read popularity item by item (``stream.ranking_pass``).
        """
        return self._scaled, self._top

    def relative_all(self, n_items: int) -> np.ndarray:
        """:meth:`relative` of items ``0..n_items-1``."""
        out = np.zeros(n_items)
        known = min(n_items, self._scaled.shape[0])
        if known and self._top > 0:
            np.multiply(self._scaled[:known], 1.0 / self._top, out=out[:known])
        return out

    def forget_item(self, item: int) -> None:
        self.forget_items(np.array([item]))

    def forget_items(self, items: np.ndarray) -> None:
        """Drop the items' scores (expired or withdrawn; their rows may be reused)."""
        items = items[items < self._scaled.shape[0]]
        if items.size:
            self._scaled[items] = 0.0
            self._top = float(self._scaled.max()) if self._scaled.size else 0.0
