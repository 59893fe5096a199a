"""The multi-task model's feature layout, and each user's signals and feature rows.

:data:`SIGNAL_ROWS` are the rows of a user's signal matrix (over the whole
catalog) and :data:`FEATURE_NAMES` the columns of the shared feature vector of
a (user, item) pair that every task head reads. :class:`TaskFeatures` (a mixin
of :class:`~stream.multitask.MultiTaskRecommender`) builds both: it gathers
the inputs of the compiled passes in :mod:`stream.ranking_pass` and caches
recently ranked users' signal matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.entities import grown
from stream.hybrid import PERSONA_SEPARATOR
from stream.kernels import index_of
from stream.ranking_pass import fill_features, signal_matrix, with_session_gap

#: Rows of a user's signal matrix: the hybrid's signals, then their blend.
SIGNAL_ROWS = ("cf", "mf", "popularity", "ucf", "blend", "cf_recent")
#: Item-side feature columns kept per item.
ITEM_STATIC = ("item_log_count", "item_is_fresh", "item_mean_rating", "item_log_price", "item_year")

#: Columns of the shared feature vector of a (user, item) pair.
FEATURE_NAMES = [
    "cf",  # item-CF score, normalised per user
    "mf",  # MF score, min-max normalised per user
    "popularity",  # decayed popularity, normalised by the top item
    "ucf",  # user-based CF over recent neighbours, normalised per user
    "blend",  # the retrieval blend of the three above (what chose the candidates)
    "content",  # cosine of the user's content profile and the item's content
    "content_recent",  # the same against the user's last few items only
    "cf_x_content",  # collaborative and content evidence agreeing
    "item_log_count",  # how much evidence the item has
    "item_is_fresh",  # fewer than fresh_threshold engagements
    "user_log_count",  # how much evidence the user has
    "item_mean_rating",  # centred; 0 when unknown
    "user_mean_rating",  # centred; 0 when unknown
    "item_log_price",  # 0 when the catalog has no price
    "item_year",  # (year - 1990) / 30; 0 when unknown
    "user_gap",  # log time since the user's previous event: a new session or not
    "gap_x_popularity",  # after a break, what is popular now matters more
    "gap_x_cf",  # within a session, what the user just did matters more
    "cf_recent",  # item-CF over the last few items only (sharp recency)
    "segment_popularity",  # popular among users of the same gender and age band
    "mf_x_fresh",  # MF for an item with little history: mostly its content prior
]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY_FLOAT = np.zeros(0)


def _profile_id(user_id: str) -> str:
    """The user id a profile is filed under (a per-domain key without its domain)."""
    return user_id.partition(PERSONA_SEPARATOR)[0]


def _centred_rating(total, n):  # noqa: ANN001, ANN202 - floats or arrays alike
    """Mean rating shrunk towards 3.5 by two pseudo-ratings, centred and scaled to ~[-1, 1].

    Two ratings say less than two hundred; an item with none scores 0.
    """
    return ((total + 3.5 * 2.0) / (n + 2.0) - 3.5) / 1.5


@dataclass(slots=True)
class _LastRanking:
    """What the latest ranking of a known user computed, while the model has not changed
    since: the event that follows is usually that user's, and its row reuses it."""

    user: int
    version: int  # the model's state version when it was ranked
    candidates: np.ndarray
    features: np.ndarray  # the candidates' rows, as scored
    signals: np.ndarray  # the user's signal matrix
    pair_inputs: tuple[Any, ...]  # what fill_features read (scored at the model clock)


class _Counts:
    """Engagement counts and rating sums per dense id (users or items)."""

    def __init__(self) -> None:
        self.events = np.zeros(0)
        self.rating_sum = np.zeros(0)
        self.rating_n = np.zeros(0)

    def _ensure(self, rows: int) -> None:
        if rows > self.events.shape[0]:
            self.events = grown(self.events, rows)
            self.rating_sum = grown(self.rating_sum, rows)
            self.rating_n = grown(self.rating_n, rows)

    def add(self, row: int, rating: float | None) -> None:
        self._ensure(row + 1)
        self.events[row] += 1
        if rating is not None:
            self.rating_sum[row] += rating
            self.rating_n[row] += 1

    def clear(self, row: int) -> None:
        if row < self.events.shape[0]:
            self.events[row] = self.rating_sum[row] = self.rating_n[row] = 0.0

    def clear_rows(self, rows: np.ndarray) -> None:
        rows = rows[rows < self.events.shape[0]]
        self.events[rows] = self.rating_sum[rows] = self.rating_n[rows] = 0.0

    def of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Event counts and centred mean ratings (0 without ratings) of ``rows``."""
        if rows.size:
            self._ensure(int(rows.max()) + 1)
        return self.events[rows], _centred_rating(self.rating_sum[rows], self.rating_n[rows])


_BLEND_ROWS: dict[tuple[tuple[str, float], ...], tuple[np.ndarray, np.ndarray]] = {}


def _blend_arrays(blend: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The blend as (signal rows, weights) in the dict's order, which fixes the summation order."""
    key = tuple(blend.items())
    arrays = _BLEND_ROWS.get(key)
    if arrays is None:
        rows = np.array([SIGNAL_ROWS.index(name) for name in blend], dtype=np.int64)
        arrays = _BLEND_ROWS[key] = (rows, np.array([blend[name] for name in blend], dtype=float))
    return arrays


class TaskFeatures:
    """Signal matrices and feature rows of the multi-task model (a mixin).

    Reads the model's settings ``segment_prior``, ``vector_cache_size``,
    ``recency_decay``, ``short_recency_decay``, ``user_cf``, ``blend`` and
    ``recent_cf_weight``; its state ``_users``, ``_items``, ``_history``,
    ``_clock``, ``_cf_profiles``, ``_cf_recent``, ``_cooccurrence``, ``_mf``,
    ``_neighbourhood``, ``_popularity``, ``_content``, ``_taste``,
    ``_segments``, ``_segment_vectors``, ``_user_counts``, ``_item_static``
    (through ``_ensure_item_static``), ``_state_version`` and ``_ranked_last``;
    and keeps ``_vector_cache`` and ``_last_event_row`` up to date.
    """

    #: Memory for the cache of signal matrices (6 floats per item per user): at
    #: most ``vector_cache_size`` users, fewer for a catalog too large for this.
    #: 256 MiB holds 1,024 users of a 5,000-item catalog, 55 of a 100,000-item one.
    signal_cache_mb = 256.0

    def _vectors(
        self,
        user: int | None,
        n_items: int,
        *,
        current: bool = True,
        segment: str | None = None,
    ) -> np.ndarray:
        """The user's signal matrix, rows ``SIGNAL_ROWS``, one column per item.

        ``current=False`` accepts the last matrix computed for the user; items
        added since then get zero signals (they had none when it was computed).
        A user with no events (``user`` None) whose profile names a ``segment``
        gets MF scores from the segment's mean vector (``segment_prior``).
        """
        key, prior = self._vector_key(user, segment)
        matrix = self._cached_vectors(key, n_items, current)
        if matrix is None:
            matrix = self._signal_matrix(user, n_items, prior)
            self._store_vectors(key, matrix)
        return matrix

    def _vector_key(
        self, user: int | None, segment: str | None
    ) -> tuple[int | str, np.ndarray | None]:
        """Where the user's signal matrix is cached, and the MF prior of a user without events."""
        prior = None
        if user is None and self.segment_prior:
            prior = self._segment_vectors.mean(segment)
        key: int | str = (-1 if prior is None else f"segment:{segment}") if user is None else user
        return key, prior

    def _cached_vectors(self, key: int | str, n_items: int, current: bool) -> np.ndarray | None:
        """The cached matrix under ``key`` if it will do (see :meth:`_vectors`), else None."""
        cached = self._vector_cache.get(key)
        if cached is None or cached[1].shape[1] > n_items:
            return None
        if current and (cached[0] != self._state_version or cached[1].shape[1] != n_items):
            return None
        matrix = cached[1]
        if matrix.shape[1] < n_items:
            matrix = np.pad(matrix, ((0, 0), (0, n_items - matrix.shape[1])))
            self._vector_cache[key] = (cached[0], matrix)
        self._vector_cache.move_to_end(key)
        return matrix

    def _store_vectors(self, key: int | str, matrix: np.ndarray) -> None:
        self._vector_cache[key] = (self._state_version, matrix)
        self._vector_cache.move_to_end(key)
        # Matrices cached earlier are at most this wide (the catalog only grows).
        fit = max(1, int(self.signal_cache_mb * 2**20) // max(matrix.nbytes, 1))
        while len(self._vector_cache) > min(self.vector_cache_size, fit):
            self._vector_cache.popitem(last=False)

    def _signal_matrix(
        self, user: int | None, n_items: int, prior: np.ndarray | None
    ) -> np.ndarray:
        """Rows ``SIGNAL_ROWS`` over every item, computed in one compiled pass.

        The hybrid's per-signal vectors (``_signal_vectors``), to rounding,
        plus ``cf_recent`` and the blend; an unknown user has popularity only,
        or MF scores from ``prior`` (their segment's mean vector).
        """
        return signal_matrix(*self._signal_inputs(user, n_items, prior))

    def _signal_inputs(
        self, user: int | None, n_items: int, prior: np.ndarray | None
    ) -> tuple[Any, ...]:
        """The arguments of :func:`~stream.ranking_pass.signal_matrix` for this user."""
        cf_raw = recent_raw = ucf_raw = mf_user = _EMPTY_FLOAT
        if user is not None:
            history = self._history
            cf_raw = self._cf_profiles.scores(
                user, n_items, lambda: history.positive_recent(user, self.recency_decay)
            )
            mf_user = self._mf.user_vector(user)
            if self.user_cf:
                ucf_raw = self._neighbourhood.scores(
                    user, n_items, lambda v: history.positive_recent(v, self.recency_decay)
                )
            recent_raw = self._cf_recent.scores(
                user, n_items, lambda: history.positive_recent(user, self.short_recency_decay)
            )
        elif prior is not None:
            mf_user = prior
        scaled, top = self._popularity.scaled_and_top()
        rows, weights = _blend_arrays(self.blend)
        return (
            n_items,
            cf_raw,
            recent_raw,
            self._cooccurrence.inverse_norms(n_items),
            mf_user,
            self._mf.item_vectors(n_items),
            self._mf.item_biases(n_items),
            scaled,
            1.0 / top if top > 0 else 0.0,
            ucf_raw,
            rows,
            weights,
            float(self.recent_cf_weight),
        )

    def _features(
        self,
        user: int | None,
        items: np.ndarray,
        n_items: int,
        *,
        current: bool = True,
        now: float | None = None,
        user_id: str | None = None,
    ) -> np.ndarray:
        """The shared feature matrix of (user, item) for each of ``items`` (FEATURE_NAMES).

        ``user_id`` names a user without events (``user`` None), whose profile
        may still place them in a segment.
        """
        if user is not None:
            user_id = self._users.external(user)
        segment = None
        if user is None and user_id is not None:
            segment = self._segments.segment(_profile_id(user_id))
        signals = self._vectors(user, n_items, current=current, segment=segment)
        rows = max(n_items, int(items.max()) + 1 if items.size else 0)
        out = np.empty((items.shape[0], len(FEATURE_NAMES)))
        fill_features(out, signals, items, self._pair_inputs(user, user_id, rows, now))
        return out

    def _pair_inputs(
        self, user: int | None, user_id: str | None, rows: int, now: float | None
    ) -> tuple[Any, ...]:
        """What the compiled feature rows read besides the signals and items (the
        ``pair_inputs`` of :func:`~stream.ranking_pass.fill_features`): item columns and
        sparse content vectors (covering item rows ``0..rows-1``), the user's content
        profiles, evidence and session gap, and their segment's popularity.
        """
        self._ensure_item_static(rows)
        *content, width = self._content.sparse_table(rows)
        profiles = np.zeros((0, width))
        user_log_count = user_mean_rating = 0.0
        if user is not None:
            profiles = self._taste.aligned_profiles(user, width)
            counts = self._user_counts
            counts._ensure(user + 1)
            user_log_count = math.log1p(counts.events[user]) / 8.0
            rating_sum, rating_n = float(counts.rating_sum[user]), float(counts.rating_n[user])
            user_mean_rating = _centred_rating(rating_sum, rating_n)
        profile_id = _profile_id(user_id) if user_id is not None else None
        segment_scaled, segment_top = self._segments.table(profile_id)
        return (
            self._item_static,
            tuple(content),
            profiles,
            user_log_count,
            user_mean_rating,
            self._user_gap(user, now),
            segment_scaled,
            segment_top,
        )

    def _user_gap(self, user: int | None, now: float | None) -> float:
        """log(1 + seconds since the user's last event) / 16, at ``now`` (the model clock)."""
        if user is None:
            return 1.0
        last = self._history.last_time(user)
        if last is None:
            return 1.0
        elapsed = max(0.0, (self._clock if now is None else now) - last)
        return math.log1p(elapsed) / 16.0

    def _event_row(
        self, user: int | None, item: int, timestamp: float, user_id: str | None = None
    ) -> np.ndarray:
        """Features of the event's pair before it is learned.

        Predicting an event's tasks and then learning it need the same row:
        it is built once and reused while the model has not changed.
        """
        key = (user, item, timestamp, self._state_version)
        if self._last_event_row is not None and self._last_event_row[0] == key:
            return self._last_event_row[1]
        ranked = self._ranked_last
        if user is not None and ranked is not None and ranked.user == user:
            if ranked.version == self._state_version:
                row = self._row_from_ranking(ranked, item, self._user_gap(user, timestamp))
                self._last_event_row = (key, row)
                return row
        row = self._features(
            user,
            np.array([item]),
            self._items.capacity,
            current=False,
            now=timestamp,
            user_id=user_id,
        )[0]
        self._last_event_row = (key, row)
        return row

    @staticmethod
    def _row_from_ranking(ranked: _LastRanking, item: int, gap: float) -> np.ndarray:
        """The item's feature row for the user just ranked (nothing changed since),
        as scored with session gap ``gap``: the candidate's row when it was one,
        else one row built from the ranking's signals and inputs."""
        position = index_of(ranked.candidates, item)
        if position >= 0:
            return with_session_gap(ranked.features[position], gap)
        inputs = ranked.pair_inputs
        out = np.empty((1, len(FEATURE_NAMES)))
        fill_features(out, ranked.signals, np.array([item]), (*inputs[:5], gap, *inputs[6:]))
        return out[0]
