"""Cold-start transfer of the multi-task model (``docs/transfer.md``).

:class:`ColdStartTransfer` (a mixin of :class:`~stream.multitask.MultiTaskRecommender`)
gives a cold item's MF embedding a prior predicted from its catalog features
by a map learned from the warm items, and starts a new user's MF vector at
their demographic segment's mean.
"""

from __future__ import annotations

import numpy as np

from stream.entities import grown
from stream.task_features import _profile_id

#: Upper edges of the item-age bins the cold-start map reads (see ``_transfer_inputs``).
_AGE_EDGES = (1, 2, 3, 4, 5, 10, 20, 1_000)


class ColdStartTransfer:
    """Content priors for cold items, segment priors for new users (a mixin).

    Reads the model's settings ``cold_start_transfer``, ``segment_prior`` and
    ``fresh_threshold``; its state ``_users``, ``_items``, ``_withdrawn``,
    ``_mf``, ``_content``, ``_content_map``, ``_segments``, ``_segment_vectors``,
    ``_item_counts`` and ``_user_counts``; and keeps ``_item_prior``,
    ``_has_prior`` and ``_state_version`` up to date. Its ``_new_user``
    overrides :class:`~stream.hybrid.HybridRecommender`'s hook, so it comes
    before that class among the model's bases.
    """

    def _new_user(self, user_id: str, row: int) -> None:
        if self.segment_prior:
            prior = self._segment_vectors.mean(self._segments.segment(_profile_id(user_id)))
            if prior is not None:
                self._mf.set_user(row, prior)

    def _refit_transfer(self) -> None:
        """Refit the content -> embedding map on warm items and move cold items' priors.

        Also refreshes the segments' mean user vectors. Costs a ridge solve
        over the content dimensions (~100), every ``transfer_refit_every`` events.
        """
        n_items = self._items.capacity
        if self.cold_start_transfer and n_items:
            counts = self._item_counts
            counts._ensure(n_items)
            live = ~self._withdrawn[:n_items]
            has_content = self._content.has_content(n_items)
            warm = np.flatnonzero(
                live & has_content & (counts.events[:n_items] >= self.fresh_threshold)
            )
            if warm.size:
                targets = np.hstack(
                    [
                        self._mf.item_vectors(n_items)[warm],
                        self._mf.item_biases(n_items)[warm, None],
                    ]
                )
                # Warm items' own priors are part of what they learned; the map
                # fits the embeddings as they are.
                if self._content_map.fit(self._transfer_inputs(warm), targets):
                    cold = np.flatnonzero(
                        live & has_content & (counts.events[:n_items] < self.fresh_threshold)
                    )
                    self._apply_item_priors(cold)
        if self.segment_prior:
            users, segments = [], []
            counts = self._user_counts
            for user_id, segment in self._segments.profiles():
                row = self._users.get(user_id)
                if row is not None and row < counts.events.shape[0]:
                    if counts.events[row] >= self.fresh_threshold:
                        users.append(row)
                        segments.append(segment)
            if users:
                self._segment_vectors.fit(segments, self._mf.user_vector_rows(np.array(users)))

    def _transfer_inputs(self, items: np.ndarray) -> np.ndarray:
        """What the content map reads: age bins, log price, then the content vector.

        Age (years before the newest release year in the catalog, in bins
        0, 1, 2, 3, 4, 5-9, 10-19, 20+, unknown) says whether an item is a new
        release, which drives early engagement more than its genre does. The
        fixed-width columns come first so that a new genre only appends one.
        """
        year, known = self._content.year(items)
        newest = self._content.newest_year()
        age = np.clip(newest - year, 0, None)
        bins = np.searchsorted(np.array(_AGE_EDGES[:-1]), age, side="right")
        bins[~known] = len(_AGE_EDGES)
        inputs = np.zeros((items.shape[0], len(_AGE_EDGES) + 2))
        inputs[np.arange(items.shape[0]), bins] = 1.0
        inputs[:, -1] = np.log1p(self._content.price(items)) / 8.0
        return np.hstack([inputs, self._content.vectors(items)])

    def _apply_item_priors(self, items: np.ndarray) -> None:
        """Move each item's embedding from its old prior to the prediction for its content."""
        if not items.size:
            return
        top = int(items.max()) + 1
        if top > self._item_prior.shape[0]:
            self._item_prior = grown(self._item_prior, top)
            self._has_prior = grown(self._has_prior, top)
        prior = self._content_map.predict(self._transfer_inputs(items))
        delta = prior - self._item_prior[items]
        self._mf.shift_items(items, delta[:, :-1], delta[:, -1])
        self._item_prior[items] = prior
        self._has_prior[items] = True
        self._state_version += 1
