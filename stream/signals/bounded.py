"""Per-user score vectors over the catalog, held within a memory budget.

Carried item-CF vectors and user-CF score vectors have one float per item
for every user who has them: a 15,000-user stream over 2,000 items holds
hundreds of megabytes of them, and a 100,000-item catalog would need
gigabytes per thousand users. Every such vector can be rebuilt from the
user's history, so the least recently used ones are dropped once the
vectors held pass a byte budget, and rebuilt when their user comes back.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Default budget of each store: 64 MiB (about 5,000 users of a 1,700-item catalog).
DEFAULT_BUDGET_MB = 64.0


class BoundedVectors:
    """A dict of user -> vector, least recently used first, evicted past ``budget_mb``.

    The newest vector is always kept, whatever its size.

    >>> store = BoundedVectors(budget_mb=16 / 2**20)  # room for two 1-float vectors
    >>> for user in range(3):
    ...     evicted = store.put(user, np.zeros(1))
    >>> evicted, sorted(store)
    ([0], [1, 2])
    """

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        self.budget_bytes = int(budget_mb * 2**20)
        self._vectors: dict[int, np.ndarray] = {}  # insertion order = recency order
        self._held = 0  # bytes of the vectors held
        # The most recently used user: asked for again and again while they
        # act, so their vector is not moved to the end each time.
        self._newest: int | None = None

    @classmethod
    def of(
        cls, vectors: dict[int, np.ndarray], budget_mb: float = DEFAULT_BUDGET_MB
    ) -> BoundedVectors:
        """A store holding ``vectors`` (a pickle's plain dict), oldest first, within the budget."""
        store = cls(budget_mb)
        for user, vector in vectors.items():
            store.put(user, vector)
        return store

    def get(self, user: int) -> np.ndarray | None:
        """The user's vector (now the most recently used), or None."""
        vector = self._vectors.get(user)
        if vector is not None and user != self._newest:
            del self._vectors[user]
            self._vectors[user] = vector
            self._newest = user
        return vector

    def put(self, user: int, vector: np.ndarray) -> list[int]:
        """Hold ``vector`` as the user's newest; returns the users evicted to make room."""
        old = self._vectors.pop(user, None)
        if old is not None:
            self._held -= old.nbytes
        self._vectors[user] = vector
        self._held += vector.nbytes
        self._newest = user
        evicted = []
        while self._held > self.budget_bytes and len(self._vectors) > 1:
            oldest = next(iter(self._vectors))
            self._held -= self._vectors.pop(oldest).nbytes
            evicted.append(oldest)
        return evicted

    def pop(self, user: int) -> np.ndarray | None:
        vector = self._vectors.pop(user, None)
        if vector is not None:
            self._held -= vector.nbytes
        if user == self._newest:
            self._newest = None
        return vector

    def values(self) -> Iterator[np.ndarray]:
        return iter(self._vectors.values())

    @property
    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._vectors)

    def __iter__(self) -> Iterator[int]:
        return iter(self._vectors)

    def __contains__(self, user: object) -> bool:
        return user in self._vectors
