"""Popular now: decayed popularity overall, per genre and per user segment, as short top lists."""

from __future__ import annotations

import numpy as np

from stream.signals.popularity import DecayedPopularity
from stream.twostage.kernels import top_list_update

_EMPTY = np.zeros(0, dtype=np.int64)


class _TopList:
    """A fixed-size list of item rows, the heaviest of one popularity table."""

    def __init__(self, size: int) -> None:
        self.ids = np.full(size, -1, dtype=np.int64)

    def update(self, scaled: np.ndarray, item: int) -> None:
        top_list_update(self.ids, scaled, item)

    def items(self) -> np.ndarray:
        return self.ids[self.ids >= 0]

    def drop(self, gone: np.ndarray) -> None:
        held = self.ids >= 0
        self.ids[held & gone[np.maximum(self.ids, 0)]] = -1


class PopularNow:
    """What is popular now, in three scopes, each readable as a short list in O(list).

    Parameters
    ----------
    half_life
        Seconds of event time after which an engagement counts half (overall and per genre).
    segment_half_life
        The same within a user segment (which sees fewer events).
    list_size
        Items kept per top list.
    """

    def __init__(
        self,
        half_life: float = 3 * 86400.0,
        segment_half_life: float = 14 * 86400.0,
        list_size: int = 50,
    ) -> None:
        self.half_life = half_life
        self.segment_half_life = segment_half_life
        self.list_size = list_size
        self.overall = DecayedPopularity(half_life)
        self._overall_top = _TopList(list_size)
        self._genre_top: dict[int, _TopList] = {}
        self._segments: dict[str, DecayedPopularity] = {}
        self._segment_top: dict[str, _TopList] = {}

    def learn(
        self, item: int, weight: float, timestamp: float, genres: np.ndarray, segment: str | None
    ) -> None:
        if weight <= 0:
            return  # a dislike says nothing about what is popular
        self.overall.learn(item, weight, timestamp)
        scaled = self.overall.scaled_and_top()[0]
        self._overall_top.update(scaled, item)
        for code in genres.tolist():
            if code < 0:
                break
            top = self._genre_top.get(code)
            if top is None:
                top = self._genre_top[code] = _TopList(self.list_size)
            top.update(scaled, item)
        if segment is not None:
            table = self._segments.get(segment)
            if table is None:
                table = self._segments[segment] = DecayedPopularity(self.segment_half_life)
                self._segment_top[segment] = _TopList(self.list_size)
            table.learn(item, weight, timestamp)
            self._segment_top[segment].update(table.scaled_and_top()[0], item)

    def top(self) -> np.ndarray:
        return self._overall_top.items()

    def top_in_genres(self, genres: list[int]) -> np.ndarray:
        lists = [self._genre_top[g].items() for g in genres if g in self._genre_top]
        return np.concatenate(lists) if lists else _EMPTY

    def top_in_segment(self, segment: str | None) -> np.ndarray:
        top = self._segment_top.get(segment) if segment is not None else None
        return _EMPTY if top is None else top.items()

    def relative(self, items: np.ndarray) -> np.ndarray:
        """Popularity of ``items`` relative to the top item."""
        return self.overall.relative(items)

    def relative_in_genre(self, items: np.ndarray, genres: np.ndarray) -> np.ndarray:
        """Popularity of each item relative to the top item of its primary genre (0 without one)."""
        scaled = self.overall.scaled_and_top()[0]
        out = np.zeros(items.shape[0])
        for code in np.unique(genres[genres >= 0]).tolist():
            top = self._genre_top.get(code)
            held = top.items() if top is not None else _EMPTY
            held = held[held < scaled.shape[0]]
            best = float(scaled[held].max()) if held.size else 0.0
            if best > 0:
                where = genres == code
                inside = items[where]
                known = inside < scaled.shape[0]
                values = np.zeros(inside.shape[0])
                values[known] = scaled[inside[known]] / best
                out[where] = np.minimum(values, 1.0)
        return out

    def relative_in_segment(self, items: np.ndarray, segment: str | None) -> np.ndarray:
        table = self._segments.get(segment) if segment is not None else None
        return np.zeros(items.shape[0]) if table is None else table.relative(items)

    def forget_items(self, rows: np.ndarray) -> None:
        self.overall.forget_items(rows)
        for table in self._segments.values():
            table.forget_items(rows)
        size = max(
            [self.overall.scaled_and_top()[0].shape[0], int(rows.max()) + 1 if rows.size else 0]
        )
        gone = np.zeros(size, dtype=bool)
        gone[rows] = True
        for top in [self._overall_top, *self._genre_top.values(), *self._segment_top.values()]:
            top.drop(gone)
