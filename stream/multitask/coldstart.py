"""Cold-start priors: an MF embedding for a new item from its content, and for a new user
from their segment (``docs/transfer.md``)."""

from __future__ import annotations

import itertools

import numpy as np

from stream.entities import grown
from stream.multitask.catalog import ItemCatalog
from stream.multitask.content_map import ContentEmbeddingMap, SegmentVectors
from stream.multitask.users import UserSide
from stream.signals.factorization import OnlineMF

#: Warm items (and warm users of each segment) a refit reads at most: the map
#: needs a sample, not the catalog, so a refit costs the same at any size.
FIT_SAMPLE = 5_000


class ColdStartPriors:
    """Learns content -> item embedding on warm items; moves cold items' embeddings to it.

    Parameters
    ----------
    ridge
        Ridge penalty of the content map.
    fresh_threshold
        Engagements that make an item (or user) warm.
    seed
        Seed of the warm-item sample.
    """

    def __init__(self, ridge: float = 1.0, fresh_threshold: int = 5, seed: int = 0) -> None:
        self.ridge = ridge
        self.fresh_threshold = fresh_threshold
        self.content_map = ContentEmbeddingMap(ridge=ridge)
        self.segment_vectors = SegmentVectors()
        self._prior = np.zeros((0, 0))
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def _inputs(catalog: ItemCatalog, items: np.ndarray) -> np.ndarray:
        # Price and year first (fixed columns), then the content vector.
        return np.hstack([catalog.stats[items, 3:5], catalog.content[items].astype(np.float64)])

    def refit(self, catalog: ItemCatalog, mf: OnlineMF, cold: np.ndarray) -> None:
        """Fit the map on a sample of warm items; move the priors of the ``cold`` items."""
        n = catalog.capacity
        warm = np.flatnonzero(
            (catalog.events[:n] >= self.fresh_threshold)
            & catalog.has_content[:n]
            & ~catalog.withdrawn[:n]
        )
        if warm.size > FIT_SAMPLE:
            warm = self._rng.choice(warm, FIT_SAMPLE, replace=False)
        if not warm.size:
            return
        vectors, biases = mf.item_rows(warm)
        targets = np.hstack([vectors, biases[:, None]])
        if self.content_map.fit(self._inputs(catalog, warm), targets):
            self.apply(catalog, mf, cold)

    def apply(self, catalog: ItemCatalog, mf: OnlineMF, items: np.ndarray) -> None:
        """Move each item's embedding from the prior it carries to the map's prediction."""
        if not self.content_map.fitted:
            return
        items = items[catalog.has_content[items] & (catalog.events[items] < self.fresh_threshold)]
        if not items.size or not self.content_map.fitted:
            return
        width = mf.n_factors + 1
        if self._prior.shape[1] != width:
            self._prior = np.zeros((self._prior.shape[0], width))
        self._prior = grown(self._prior, int(items.max()) + 1)
        predicted = self.content_map.predict(self._inputs(catalog, items))
        shift = predicted - self._prior[items]
        mf.shift_items(items, shift[:, :-1], shift[:, -1])
        self._prior[items] = predicted

    def forget_items(self, rows: np.ndarray) -> None:
        rows = rows[rows < self._prior.shape[0]]
        self._prior[rows] = 0.0

    def refit_segments(self, users: UserSide, mf: OnlineMF) -> None:
        """Mean MF vector of each segment's warm users (from a bounded sample of profiles)."""
        rows, segments = [], []
        for user_id, segment in itertools.islice(users.segments.items(), 4 * FIT_SAMPLE):
            row = users.ids.get(user_id)
            if row is not None and users.events[row] >= self.fresh_threshold:
                rows.append(row)
                segments.append(segment)
        if rows:
            self.segment_vectors.fit(segments, mf.user_vector_rows(np.array(rows)))

    def user_prior(self, segment: str | None) -> np.ndarray | None:
        return self.segment_vectors.mean(segment)
