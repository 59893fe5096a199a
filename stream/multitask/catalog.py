"""The item side's catalog part: ids, content, statistics, and which items are fresh.

Content is a fixed-width vector per item (hashed title words and hashed
genres), so a user's taste profile over it has the same size whatever the
catalog holds; genres are also kept as small integer codes, which the
genre-scoped candidate sources and features read.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np

from stream.entities import IdIndex, grown
from stream.multitask.layout import ITEM_STATS, centred_rating

#: Genres kept per item (the first is its primary genre).
MAX_GENRES = 3
#: Nonzero content columns kept per item (the heaviest): compiled scoring reads them only.
MAX_CONTENT_NONZEROS = 16


_NO_ROWS = np.zeros(0, dtype=np.int64)


def _bucket(text: str, buckets: int) -> int:
    return zlib.crc32(text.encode()) % buckets


class ItemCatalog:
    """Item ids and everything known about an item apart from what collaborative parts learn.

    Parameters
    ----------
    title_buckets, genre_buckets
        Width of the hashed title-word and genre blocks of the content vectors.
    title_weight
        Weight of the title block relative to the genre block.
    fresh_threshold
        Engagements below which an item counts as fresh (cold).
    """

    def __init__(
        self,
        title_buckets: int = 32,
        genre_buckets: int = 64,
        title_weight: float = 0.5,
        fresh_threshold: int = 5,
    ) -> None:
        self.title_buckets = title_buckets
        self.genre_buckets = genre_buckets
        self.title_weight = title_weight
        self.fresh_threshold = fresh_threshold
        self.ids = IdIndex()
        width = title_buckets + genre_buckets
        self.content = np.zeros((0, width), dtype=np.float32)
        self.has_content = np.zeros(0, dtype=bool)
        # The same vectors as their nonzeros (column -1 pads), for compiled scoring.
        self.content_columns = np.full((0, MAX_CONTENT_NONZEROS), -1, dtype=np.int32)
        self.content_values = np.zeros((0, MAX_CONTENT_NONZEROS), dtype=np.float32)
        self.genres = np.full((0, MAX_GENRES), -1, dtype=np.int32)
        self.genre_codes: dict[str, int] = {}
        self.genre_names: list[str] = []
        # Item rows of each genre: appended as items come, checked and made an
        # array when read after a change (a genre's set changes rarely).
        self._members: dict[int, list[int]] = {}
        self._member_arrays: dict[int, np.ndarray] = {}
        self._stale_members: set[int] = set()
        self.withdrawn = np.zeros(0, dtype=bool)
        self.domain = np.full(0, -1, dtype=np.int32)
        self.domain_codes: dict[str, int] = {}
        self.titles: dict[int, str] = {}
        #: Per-item statistics, columns :data:`~stream.multitask.layout.ITEM_STATS`.
        self.stats = np.zeros((0, len(ITEM_STATS)))
        self.events = np.zeros(0)
        self.rating_sum = np.zeros(0)
        self.rating_n = np.zeros(0)
        # Fresh items in arrival order (newest last): the fresh source reads the newest few.
        self.fresh: OrderedDict[int, None] = OrderedDict()
        self._fresh_version = 0  # bumped when the fresh set or a withdrawal changes
        self._newest: tuple[int, int, np.ndarray] | None = None

    @property
    def capacity(self) -> int:
        return self.ids.capacity

    def _ensure(self, rows: int) -> None:
        if rows <= self.withdrawn.shape[0]:
            return
        self.content = grown(self.content, rows)
        self.has_content = grown(self.has_content, rows)
        self.content_columns = grown(self.content_columns, rows, fill=-1)
        self.content_values = grown(self.content_values, rows)
        self.genres = grown(self.genres, rows, fill=-1)
        self.withdrawn = grown(self.withdrawn, rows)
        self.domain = grown(self.domain, rows, fill=-1)
        self.stats = grown(self.stats, rows)
        self.events = grown(self.events, rows)
        self.rating_sum = grown(self.rating_sum, rows)
        self.rating_n = grown(self.rating_n, rows)

    def row(self, item_id: str) -> tuple[int, bool]:
        """The item's row, allocated on first sight; and whether it is new."""
        row = self.ids.get(item_id)
        if row is not None:
            return row, False
        row = self.ids.add(item_id)
        self._ensure(row + 1)
        self._clear(row)
        self._refresh_stats(row)
        return row, True

    def _clear(self, row: int) -> None:
        for code in self.genres[row].tolist():
            if code >= 0:
                self._stale_members.add(code)
        self.content[row] = 0.0
        self.has_content[row] = False
        self.content_columns[row] = -1
        self.content_values[row] = 0.0
        self.genres[row] = -1
        self.withdrawn[row] = False
        self.domain[row] = -1
        self.stats[row] = 0.0
        self._fresh_version += 1
        self.events[row] = self.rating_sum[row] = self.rating_n[row] = 0.0
        self.titles.pop(row, None)

    # ------------------------------------------------------------------ catalog records

    def set_features(self, row: int, features: dict[str, Any]) -> None:
        """Record (or replace) an item's content from its catalog features."""
        genres = features.get("genres")
        names = [g for g in genres if isinstance(g, str) and g] if isinstance(genres, list) else []
        for code in self.genres[row].tolist():
            if code >= 0:
                self._stale_members.add(code)
        self.genres[row] = -1
        for slot, name in enumerate(names[:MAX_GENRES]):
            code = self.genre_codes.get(name)
            if code is None:
                code = self.genre_codes[name] = len(self.genre_names)
                self.genre_names.append(name)
            self.genres[row, slot] = code
            self._members.setdefault(code, []).append(row)
            self._stale_members.add(code)
        # The content vector as {column: weight}: a handful of hashed genres and words.
        vector: dict[int, float] = {}
        for name in names:
            column = self.title_buckets + _bucket(name, self.genre_buckets)
            vector[column] = vector.get(column, 0.0) + 1.0
        title = features.get("title")
        if isinstance(title, str) and title:
            self.titles[row] = title
            words = [w for w in title.lower().split() if w.isalpha() and len(w) > 2]
            for word in words:
                column = _bucket(word, self.title_buckets)
                vector[column] = vector.get(column, 0.0) + self.title_weight / math.sqrt(len(words))
        if len(vector) > MAX_CONTENT_NONZEROS:
            heaviest = sorted(vector.items(), key=lambda kv: (-kv[1], kv[0]))
            vector = dict(heaviest[:MAX_CONTENT_NONZEROS])
        norm = math.sqrt(sum(v * v for v in vector.values()))
        columns = list(vector)
        values = [v / norm for v in vector.values()] if norm > 0 else []
        self.has_content[row] = norm > 0
        self.content[row] = 0.0
        self.content_columns[row] = -1
        self.content_values[row] = 0.0
        if values:
            self.content[row, columns] = values
            self.content_columns[row, : len(columns)] = columns
            self.content_values[row, : len(columns)] = values
        price = features.get("price")
        year = features.get("year")
        stats = self.stats[row]
        ok_price = isinstance(price, (int, float)) and math.isfinite(price) and price >= 0
        stats[3] = math.log1p(float(price)) / 8.0 if ok_price else 0.0
        ok_year = isinstance(year, (int, float)) and math.isfinite(year) and 1800 <= year <= 3000
        stats[4] = (float(year) - 1990.0) / 30.0 if ok_year else 0.0
        domain = features.get("domain")
        if isinstance(domain, str) and domain:
            self.set_domain(row, domain)

    def set_domain(self, row: int, name: str) -> None:
        code = self.domain_codes.setdefault(name, len(self.domain_codes))
        self.domain[row] = code

    def domain_name(self, row: int) -> str | None:
        code = int(self.domain[row])
        return None if code < 0 else next(n for n, c in self.domain_codes.items() if c == code)

    def genre_members(self, code: int) -> np.ndarray:
        """The items that name a genre (withdrawn ones included: the ranking skips them)."""
        if code in self._stale_members:
            rows = np.unique(np.array(self._members.get(code, []), dtype=np.int64))
            rows = rows[(self.genres[rows] == code).any(axis=1)]
            self._members[code] = rows.tolist()
            self._member_arrays[code] = rows
            self._stale_members.discard(code)
        return self._member_arrays.get(code, _NO_ROWS)

    def primary_genre(self, row: int) -> str | None:
        code = int(self.genres[row, 0])
        return None if code < 0 else self.genre_names[code]

    def label(self, row: int) -> str:
        return self.titles.get(row) or self.ids.external(row)

    # ------------------------------------------------------------------ statistics

    def learn(self, row: int, rating: float | None) -> None:
        """One engagement with the item (and its rating, if it was one)."""
        self.events[row] += 1
        if rating is not None:
            self.rating_sum[row] += rating
            self.rating_n[row] += 1
        self._refresh_stats(row)

    def merge(self, row: int, events: float, rating_sum: float, rating_n: float) -> None:
        """Add another model's engagements with the item (the scale-out sync)."""
        self.events[row] += events
        self.rating_sum[row] += rating_sum
        self.rating_n[row] += rating_n
        self._refresh_stats(row)

    def _refresh_stats(self, row: int) -> None:
        events = float(self.events[row])
        fresh = events < self.fresh_threshold
        stats = self.stats[row]
        stats[0] = math.log1p(events) / 8.0
        stats[1] = float(fresh)
        stats[2] = centred_rating(float(self.rating_sum[row]), float(self.rating_n[row]))
        if fresh and row not in self.fresh:
            self.fresh[row] = None
            self._fresh_version += 1
        elif not fresh and self.fresh.pop(row, 0) is None:
            self._fresh_version += 1

    def newest_fresh(self, n: int) -> np.ndarray:
        """The ``n`` newest fresh items that are not withdrawn, newest first."""
        cached = self._newest
        if cached is not None and cached[:2] == (n, self._fresh_version):
            return cached[2]
        out = []
        for row in reversed(self.fresh):
            if not self.withdrawn[row]:
                out.append(row)
                if len(out) >= n:
                    break
        newest = np.array(out, dtype=np.int64)
        self._newest = (n, self._fresh_version, newest)
        return newest

    def withdraw(self, row: int) -> None:
        self.withdrawn[row] = True
        self._fresh_version += 1

    def restore(self, row: int) -> None:
        """A catalog record for a withdrawn item brings it back."""
        if self.withdrawn[row]:
            self.withdrawn[row] = False
            self._fresh_version += 1

    # ------------------------------------------------------------------ removal

    def remove(self, item_id: str) -> int | None:
        """Free an item's row (expiry); every table's row starts clean when reused."""
        row = self.ids.remove(item_id)
        if row is not None:
            self._clear(row)
            self.withdrawn[row] = True  # a free row is never ranked
            self.fresh.pop(row, None)
            self._fresh_version += 1
        return row

    def size(self) -> dict[str, int]:
        return {"items": len(self.ids), "item_rows": self.capacity, "fresh_items": len(self.fresh)}
