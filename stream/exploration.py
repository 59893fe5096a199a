"""Exploration: a bounded share of each list for items with little evidence.

An item nobody has engaged with is rarely ranked high, so it never gets
shown, so it never earns the engagement that would rank it: new items
starve. Thompson sampling breaks the loop: each low-evidence item's
engagement rate has a Beta posterior (engagements against the lists it was
shown in), one rate is drawn per item per list, and the highest draws fill
the exploration slots. An item shown often without engagement draws low and
stops being explored; one that earns engagement keeps its place and soon
ranks on its own merits.

>>> explorer = ThompsonExplorer(seed=1)
>>> explorer.slots(k=10, share=0.2)
2
>>> picks = explorer.pick(np.array([3, 5, 7]), 2)
>>> sorted(picks.tolist()) == sorted(set(picks.tolist())) and len(picks) == 2
True
"""

from __future__ import annotations

import math

import numpy as np

from stream.entities import grown


class ThompsonExplorer:
    """Beta-Bernoulli Thompson sampling over items' engagement per impression.

    Parameters
    ----------
    prior_engaged, prior_shown
        Beta prior pseudo-counts: an item never shown draws from
        ``Beta(prior_engaged, prior_shown)``.
    seed
        Seed of the draws (lists are reproducible for a seed and a stream).
    """

    def __init__(self, prior_engaged: float = 1.0, prior_shown: float = 1.0, seed: int = 0) -> None:
        self.prior_engaged = prior_engaged
        self.prior_shown = prior_shown
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._shown = np.zeros(0)
        self._engaged = np.zeros(0)

    def _ensure(self, rows: int) -> None:
        if rows > self._shown.shape[0]:
            self._shown = grown(self._shown, rows)
            self._engaged = grown(self._engaged, rows)

    def shown(self, items: np.ndarray) -> None:
        """The items were shown in a list."""
        if items.size:
            self._ensure(int(items.max()) + 1)
            np.add.at(self._shown, items, 1.0)

    def engaged(self, item: int) -> None:
        self._ensure(item + 1)
        self._engaged[item] += 1.0

    def forget_items(self, items: np.ndarray) -> None:
        items = items[items < self._shown.shape[0]]
        self._shown[items] = 0.0
        self._engaged[items] = 0.0

    def slots(self, k: int, share: float) -> int:
        """Exploration slots in a list of ``k``: ``share * k`` on average, randomly rounded.

        Never more than ``ceil(share * k)``, so the share is bounded per list.
        """
        expected = share * k
        whole = math.floor(expected)
        return min(k, whole + int(self._rng.random() < expected - whole))

    def pick(self, candidates: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` candidates with the highest posterior draws, highest first."""
        if n <= 0 or candidates.size == 0:
            return candidates[:0]
        self._ensure(int(candidates.max()) + 1)
        draws = self._rng.beta(
            self.prior_engaged + self._engaged[candidates],
            self.prior_shown + self._shown[candidates],
        )
        n = min(n, candidates.size)
        top = np.argpartition(-draws, n - 1)[:n]
        return candidates[top[np.argsort(-draws[top], kind="stable")]]
