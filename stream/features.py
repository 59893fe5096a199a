"""Content features of items and users, in numpy tables indexed by dense id.

Items: genre memberships (a row of 0/1 per item, L2-normalised for cosine),
release year and price where the catalog has them, and hashed title tokens
folded into the same vector space as genres so two titles sharing words look
alike. Users: a decayed genre profile learned from what they engage with,
plus categorical profile features (age band, gender, occupation) hashed into
a small vector for cold start.

The genre space is open: a genre seen for the first time gets a new column.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from stream.entities import grown

_TOKEN = re.compile(r"[a-z0-9]+")
#: Title words that say nothing about content.
_STOPWORDS = frozenset({"the", "a", "an", "of", "and", "in", "to", "on", "for", "la", "le", "de"})


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; crc32 keeps columns stable across runs.
    return zlib.crc32(text.encode("utf-8"))


class ItemContent:
    """Per-item content vectors: genres (one column each) plus hashed title tokens.

    Parameters
    ----------
    title_buckets
        Hashed title-token columns (0 disables title tokens).
    title_weight
        Weight of the title part relative to the genre part.
    """

    def __init__(self, title_buckets: int = 64, title_weight: float = 0.5) -> None:
        self.title_buckets = title_buckets
        self.title_weight = title_weight
        self._genre_columns: dict[str, int] = {}
        self._genres = np.zeros((0, 8))
        self._titles = np.zeros((0, max(title_buckets, 1)))
        # Unit-length [weighted titles | genres] per item, kept current by set():
        # ranking reads rows of it for hundreds of candidates per user.
        self._unit = np.zeros((0, title_buckets + 8))
        self._year = np.zeros(0)
        self._has_year = np.zeros(0, dtype=bool)
        self._price = np.zeros(0)
        self._has_content = np.zeros(0, dtype=bool)
        self._newest_year = 0.0

    def set(self, item: int, features: dict[str, Any]) -> None:
        """Record (or replace) the content of ``item`` from catalog features."""
        self._ensure(item + 1)
        self._genres[item] = 0.0
        for genre in features.get("genres") or ():
            column = self._genre_columns.setdefault(genre, len(self._genre_columns))
            if column >= self._genres.shape[1]:
                wider = np.zeros((self._genres.shape[0], 2 * self._genres.shape[1]))
                wider[:, : self._genres.shape[1]] = self._genres
                self._genres = wider
            self._genres[item, column] = 1.0
        self._titles[item] = 0.0
        title = features.get("title")
        if self.title_buckets and isinstance(title, str):
            for token in _TOKEN.findall(title.lower()):
                if token not in _STOPWORDS and not token.isdigit():
                    self._titles[item, _stable_hash(token) % self.title_buckets] = 1.0
        year = features.get("year")
        self._has_year[item] = isinstance(year, int) and not isinstance(year, bool)
        self._year[item] = float(year) if self._has_year[item] else 0.0
        if self._has_year[item]:
            self._newest_year = max(self._newest_year, float(year))
        price = features.get("price")
        self._price[item] = float(price) if isinstance(price, (int, float)) and price > 0 else 0.0
        self._has_content[item] = bool(self._genres[item].any() or self._titles[item].any())
        width = self.title_buckets + self._genres.shape[1]
        if self._unit.shape[1] < width:
            wider = np.zeros((self._unit.shape[0], width))
            wider[:, : self._unit.shape[1]] = self._unit
            self._unit = wider
        self._unit = grown(self._unit, item + 1)
        row = np.concatenate(
            [self.title_weight * self._titles[item, : self.title_buckets], self._genres[item]]
        )
        norm = np.linalg.norm(row)
        self._unit[item, : row.shape[0]] = row / norm if norm > 0 else row

    def clear(self, items: np.ndarray) -> None:
        """Forget the content of expired items (their rows will be reused)."""
        items = items[items < self._year.shape[0]]
        for table in (self._genres, self._titles, self._unit, self._year, self._price):
            table[items] = 0
        self._has_year[items] = False
        self._has_content[items] = False

    def _ensure(self, rows: int) -> None:
        if rows <= self._year.shape[0]:
            return  # every table grows together, so one check covers them all
        self._genres = grown(self._genres, rows)
        self._titles = grown(self._titles, rows)
        self._year = grown(self._year, rows)
        self._has_year = grown(self._has_year, rows)
        self._price = grown(self._price, rows)
        self._has_content = grown(self._has_content, rows)
        self._unit = grown(self._unit, rows)

    @property
    def n_genres(self) -> int:
        return len(self._genre_columns)

    def first_genre(self, item: int) -> str | None:
        """The item's first genre in column order (None without genres): a reason's words."""
        if item >= self._genres.shape[0]:
            return None
        columns = np.flatnonzero(self._genres[item, : self.n_genres])
        if not columns.size:
            return None
        first = int(columns[0])
        return next(name for name, column in self._genre_columns.items() if column == first)

    def vectors(self, items: np.ndarray) -> np.ndarray:
        """Unit-length content vectors (weighted title tokens, then genres) of ``items``.

        Title columns come first because their number is fixed: a new genre
        only appends a column, so stored user profiles stay aligned.
        """
        width = self.title_buckets + max(self.n_genres, 1)
        if not items.size:
            return np.zeros((0, width))
        self._ensure(int(items.max()) + 1)
        return self._unit[items, :width]

    def has(self, item: int) -> bool:
        """Whether ``item`` has any content (genres or title tokens)."""
        return item < self._has_content.shape[0] and bool(self._has_content[item])

    def vector(self, item: int) -> np.ndarray:
        """:meth:`vectors` of one item (a view: do not modify)."""
        self._ensure(item + 1)
        return self._unit[item, : self.title_buckets + max(self.n_genres, 1)]

    def genre_rows(self, items: np.ndarray) -> np.ndarray:
        self._ensure(int(items.max()) + 1 if items.size else 0)
        return self._genres[items, : max(self.n_genres, 1)]

    def year(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Release years and whether each is known."""
        self._ensure(int(items.max()) + 1 if items.size else 0)
        return self._year[items], self._has_year[items]

    def newest_year(self) -> float:
        """The latest release year the catalog has named (0 when none)."""
        return self._newest_year

    def price(self, items: np.ndarray) -> np.ndarray:
        self._ensure(int(items.max()) + 1 if items.size else 0)
        return self._price[items]

    def has_content(self, n_items: int) -> np.ndarray:
        self._ensure(n_items)
        return self._has_content[:n_items]


class UserTaste:
    """Each user's decayed content profiles: what kinds of items they engage with.

    One profile per decay, kept side by side so one engagement and one
    scoring touch them all at once: a slow decay says what the user likes in
    general, a fast one what they are into right now.

    Parameters
    ----------
    content
        Where item content vectors come from.
    decays
        Weight kept by each profile at each new engagement.
    """

    def __init__(self, content: ItemContent, decays: tuple[float, ...] = (0.95, 0.5)) -> None:
        self.content = content
        self.decays = decays
        self._decay_column = np.array(decays)[:, None]
        self._profiles: dict[int, np.ndarray] = {}

    def learn(self, user: int, item: int, weight: float) -> None:
        if not self.content.has(item):
            return
        vector = self.content.vector(item)
        profiles = self._aligned(user, vector.shape[0])
        profiles *= self._decay_column
        profiles += weight * vector

    def _aligned(self, user: int, width: int) -> np.ndarray:
        profiles = self._profiles.get(user)
        if profiles is None or profiles.shape[1] != width:
            profiles = _resized(profiles, len(self.decays), width)
            self._profiles[user] = profiles
        return profiles

    def affinity(self, user: int, items: np.ndarray) -> np.ndarray:
        """Cosine of each profile with each item's content, shape ``(items, decays)``.

        Zero where the user has no profile or the item no content.
        """
        profiles = self._profiles.get(user)
        if profiles is None or not items.size:
            return np.zeros((items.shape[0], len(self.decays)))
        vectors = self.content.vectors(items)
        if profiles.shape[1] != vectors.shape[1]:
            profiles = self._aligned(user, vectors.shape[1])
        dots = vectors @ profiles.T
        norms = np.sqrt(np.einsum("ij,ij->i", profiles, profiles))
        norms[norms == 0] = 1.0
        dots /= norms
        return dots

    def forget(self, user: int) -> None:
        self._profiles.pop(user, None)

    def n_profiles(self) -> int:
        return len(self._profiles)

    def set_profile(self, user: int, profiles: np.ndarray) -> None:
        """Seed a user's profiles (cold start from demographics or another domain)."""
        self._profiles[user] = np.atleast_2d(profiles).copy()

    def profile(self, user: int) -> np.ndarray | None:
        return self._profiles.get(user)


def _resized(profiles: np.ndarray | None, rows: int, width: int) -> np.ndarray:
    out = np.zeros((rows, width))
    if profiles is not None:
        n = min(width, profiles.shape[1])
        out[:, :n] = profiles[:, :n]
    return out
