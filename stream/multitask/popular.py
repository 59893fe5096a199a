"""Popular now: decayed popularity overall, per genre and per user segment, as short top lists."""

from __future__ import annotations

import numpy as np

from stream.entities import grown
from stream.multitask.kernels import top_list_update
from stream.signals.popularity import DecayedPopularity

_EMPTY = np.zeros(0, dtype=np.int64)


class PopularNow:
    """What is popular now, in three scopes, each readable as a short list (-1 = free slot).

    Every list ranks by a decayed popularity in which every score decays at
    the same rate, so a list is kept by updating the one item an event
    touches (:func:`~stream.multitask.kernels.top_list_update`).

    Parameters
    ----------
    half_life
        Seconds of event time after which an engagement counts half (overall).
    genre_half_life, segment_half_life
        The same within a genre and within a user segment, which each see a
        small share of the events (a short half-life leaves them noisy).
    list_size
        Items kept per top list.
    """

    def __init__(
        self,
        half_life: float = 3 * 86400.0,
        genre_half_life: float = 14 * 86400.0,
        segment_half_life: float = 14 * 86400.0,
        list_size: int = 50,
    ) -> None:
        self.half_life = half_life
        self.genre_half_life = genre_half_life
        self.segment_half_life = segment_half_life
        self.list_size = list_size
        self.overall = DecayedPopularity(half_life)
        self.overall_list = np.full(list_size, -1, dtype=np.int64)
        #: Popularity as the genre lists rank it, and one row per genre code: its top list.
        self.in_genre = DecayedPopularity(genre_half_life)
        self.genre_lists = np.full((0, list_size), -1, dtype=np.int64)
        self.segments: dict[str, DecayedPopularity] = {}
        self.segment_lists: dict[str, np.ndarray] = {}

    def learn(
        self, item: int, weight: float, timestamp: float, genres: np.ndarray, segment: str | None
    ) -> None:
        if weight <= 0:
            return  # a dislike says nothing about what is popular
        segments = {} if segment is None else {segment: weight}
        self.merge(item, timestamp, weight, weight, segments, genres)

    def merge(
        self, item: int, timestamp: float, overall: float, in_genre: float,
        segments: dict[str, float], genres: np.ndarray,
    ) -> None:  # fmt: skip
        """Add popularity as of ``timestamp``, per scope: one event's weight, or what another
        model learned (its events' weights decayed to ``timestamp`` by each scope's half-life)."""
        if overall > 0:
            self.overall.learn(item, overall, timestamp)
            top_list_update(self.overall_list, self.overall.scaled_and_top()[0], item)
        if in_genre > 0:
            self.in_genre.learn(item, in_genre, timestamp)
            scaled = self.in_genre.scaled_and_top()[0]
            for code in genres.tolist():
                if code < 0:
                    break
                if code >= self.genre_lists.shape[0]:
                    self.genre_lists = grown(self.genre_lists, code + 1, fill=-1)
                top_list_update(self.genre_lists[code], scaled, item)
        for segment, amount in segments.items():
            if amount <= 0:
                continue
            table = self.segments.get(segment)
            if table is None:
                table = self.segments[segment] = DecayedPopularity(self.segment_half_life)
                self.segment_lists[segment] = np.full(self.list_size, -1, dtype=np.int64)
            table.learn(item, amount, timestamp)
            top_list_update(self.segment_lists[segment], table.scaled_and_top()[0], item)

    def scaled(self) -> tuple[np.ndarray, float]:
        """Overall popularity as stored (scaled alike) and its top: ``scaled / top`` is relative."""
        return self.overall.scaled_and_top()

    def reserve(self, rows: int) -> None:
        """Room for items ``0..rows-1`` in the tables compiled readers index."""
        self.overall.reserve(rows)
        self.in_genre.reserve(rows)

    def genre_scaled(self) -> np.ndarray:
        """Popularity as the genre lists rank it (stored scaled alike)."""
        return self.in_genre.scaled_and_top()[0]

    def segment_table(self, segment: str | None) -> tuple[np.ndarray, float, np.ndarray]:
        """A segment's scaled popularity, its top, and its list (empty without one)."""
        table = self.segments.get(segment) if segment is not None else None
        if table is None:
            return np.zeros(0), 0.0, _EMPTY
        scaled, top = table.scaled_and_top()
        return scaled, top, self.segment_lists[segment]

    def top(self, n: int) -> np.ndarray:
        """The ``n`` most popular items now, best first."""
        held = self.overall_list[self.overall_list >= 0]
        scaled = self.overall.scaled_and_top()[0]
        return held[np.argsort(-scaled[held], kind="stable")][:n]

    def forget_items(self, rows: np.ndarray) -> None:
        self.overall.forget_items(rows)
        self.in_genre.forget_items(rows)
        for table in self.segments.values():
            table.forget_items(rows)
        for lists in [self.overall_list, self.genre_lists, *self.segment_lists.values()]:
            lists[np.isin(lists, rows)] = -1
