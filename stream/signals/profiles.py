"""Per-user item-CF score vectors, kept up to date as the user acts.

The item-CF score of user ``u`` is a recency-weighted sum of the similarity
rows of the user's recent items. Recomputing it for every ranking costs one
sparse row per history item; instead each user's sum is carried along:

    s_u  <-  decay * s_u  +  w * co(i, .) / sqrt(n(i))        (on each event)

so a ranking reads one vector (the step is taken by
:meth:`~stream.signals.cooccurrence.ItemCooccurrence.learn`, in the compiled
call that learns the event's pairs). Rows change as other users act, so a carried
sum drifts from the exact one; it is rebuilt from the user's history every
``refresh_every`` of the user's events (and whenever it is missing), which
bounds the drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from stream.signals.bounded import DEFAULT_BUDGET_MB, BoundedVectors
from stream.signals.cooccurrence import ItemCooccurrence


class ItemCFProfiles:
    """Carried item-CF score vectors, one per active user.

    Parameters
    ----------
    cooccurrence
        The co-occurrence whose rows are summed.
    decay
        Weight kept per step back in the user's history (recency weighting).
    refresh_every
        Rebuild a user's vector from history after this many of their events.
    budget_mb
        Memory for the vectors (one float per item per user): past it, the
        least recently active users' vectors are dropped, and rebuilt from
        history when those users are ranked again (:mod:`stream.signals.bounded`).
    """

    def __init__(
        self,
        cooccurrence: ItemCooccurrence,
        decay: float = 0.9,
        refresh_every: int = 8,
        budget_mb: float = DEFAULT_BUDGET_MB,
    ) -> None:
        self.cooccurrence = cooccurrence
        self.decay = decay
        self.refresh_every = refresh_every
        self._vectors = BoundedVectors(budget_mb)
        self._since_refresh: dict[int, int] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Load a pickle, also one from when the vectors were a plain dict."""
        self.__dict__.update(state)
        if isinstance(self._vectors, dict):
            self._vectors = BoundedVectors.of(self._vectors)

    def _hold(self, user: int, vector: np.ndarray) -> None:
        for evicted in self._vectors.put(user, vector):
            self._since_refresh.pop(evicted, None)

    def carried(self, user: int, n_items: int) -> tuple[np.ndarray, float] | None:
        """The user's vector (at least ``n_items`` long) and decay, for the user's next
        event to step (the co-occurrence does it, in the call that learns the
        event's pairs: :meth:`ItemCooccurrence.learn`); None when the vector is
        to be built from history at the next ranking.
        """
        vector = self._vectors.get(user)
        if vector is None:
            return None
        if vector.shape[0] < n_items:
            vector = _widened(vector, n_items)
            self._hold(user, vector)
        self._since_refresh[user] = self._since_refresh.get(user, 0) + 1
        return vector, self.decay

    def scores(
        self,
        user: int,
        n_items: int,
        history: Callable[[], tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """The user's raw item-CF scores (before the ``1/sqrt(n(j))`` normalisation).

        ``history`` gives the user's recency-weighted recent items and their
        weights; it is called only when the vector must be (re)built.
        """
        vector = self._vectors.get(user)
        if vector is None or self._since_refresh.get(user, 0) >= self.refresh_every:
            items, weights = history()
            if weights.size:
                # Items whose recency weight has decayed to nothing add nothing.
                keep = weights >= 1e-3 * weights.max()
                items, weights = items[keep], weights[keep]
            vector = np.zeros(n_items)
            self.cooccurrence.add_rows_to(vector, items, weights)
            self._since_refresh[user] = 0
            self._hold(user, vector)
        elif vector.shape[0] < n_items:
            vector = _widened(vector, n_items)
            self._hold(user, vector)
        return vector[:n_items]

    def forget(self, user: int) -> None:
        self._vectors.pop(user)
        self._since_refresh.pop(user, None)

    def forget_items(self, items: np.ndarray) -> None:
        """Zero expired items' scores in every carried vector (their rows will be reused)."""
        for vector in self._vectors.values():
            vector[items[items < vector.shape[0]]] = 0.0

    def __len__(self) -> int:
        return len(self._vectors)


def _widened(vector: np.ndarray, n_items: int) -> np.ndarray:
    """``vector`` zero-padded to ``n_items`` (items added since it was built)."""
    wider = np.zeros(max(n_items, 2 * vector.shape[0]))
    wider[: vector.shape[0]] = vector
    return wider
