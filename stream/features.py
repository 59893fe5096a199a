"""Content features of items and users, in numpy tables indexed by dense id.

Items: genre memberships (a row of 0/1 per item, L2-normalised for cosine),
release year and price where the catalog has them, and hashed title tokens
folded into the same vector space as genres so two titles sharing words look
alike, and optionally a pretrained text embedding of the item (computed
outside the core, see :mod:`stream.text_embeddings`; off by default). Users:
a decayed genre profile learned from what they engage with, plus categorical
profile features (age band, gender, occupation) hashed into a small vector
for cold start.

The genre space is open: a genre seen for the first time gets a new column.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from stream.entities import grown
from stream.kernels import decay_and_add

_TOKEN = re.compile(r"[a-z0-9]+")
#: Title words that say nothing about content.
_STOPWORDS = frozenset({"the", "a", "an", "of", "and", "in", "to", "on", "for", "la", "le", "de"})


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; crc32 keeps columns stable across runs.
    return zlib.crc32(text.encode("utf-8"))


#: Item feature holding a precomputed text embedding (a list of floats).
TEXT_EMBEDDING_FEATURE = "text_embedding"


class ItemContent:
    """Per-item content vectors: genres (one column each) plus hashed title tokens.

    Optionally a block of ``text_dims`` columns holds a pretrained text
    embedding of the item, weighted by ``text_weight``. The core never
    computes embeddings (no torch here): they arrive as the item feature
    ``"text_embedding"`` or through :meth:`set_text_embedding`.

    Parameters
    ----------
    title_buckets
        Hashed title-token columns (0 disables title tokens).
    title_weight
        Weight of the title part relative to the genre part.
    text_dims
        Width of the text-embedding block (0: none).
    text_weight
        Weight of the (unit-length) text embedding relative to the genre
        part; 0, the default, leaves the block out, so the vectors are
        exactly those without it.
    """

    def __init__(
        self,
        title_buckets: int = 64,
        title_weight: float = 0.5,
        text_dims: int = 0,
        text_weight: float = 0.0,
    ) -> None:
        if text_dims < 0 or text_weight < 0:
            raise ValueError("text_dims and text_weight must be >= 0")
        self.title_buckets = title_buckets
        self.title_weight = title_weight
        self.text_dims = text_dims
        self.text_weight = text_weight
        self._genre_columns: dict[str, int] = {}
        self._genres = np.zeros((0, 8))
        self._titles = np.zeros((0, max(title_buckets, 1)))
        self._text = np.zeros((0, max(self._text_columns, 1)))
        # Unit-length [weighted titles | weighted text | genres] per item, kept
        # current by set(): ranking reads rows of it for hundreds of candidates
        # per user. Titles and text have fixed widths and come first, so a new
        # genre only appends a column.
        self._unit = np.zeros((0, self._fixed_width + 8))
        # The same vectors, sparse: an item has a handful of title tokens and
        # genres out of ~80 columns, so scoring reads its nonzeros only
        # (row r: columns ``_sparse_columns[r, :n]`` with ``_sparse_values``,
        # n = ``_sparse_count[r]``; the width grows to the fullest item's).
        self._sparse_columns, self._sparse_values, self._sparse_count = _empty_sparse()
        self._year = np.zeros(0)
        self._has_year = np.zeros(0, dtype=bool)
        self._price = np.zeros(0)
        self._has_content = np.zeros(0, dtype=bool)
        self._newest_year = 0.0

    @property
    def _text_columns(self) -> int:
        """Columns of the text block in the vectors: 0 while it is off."""
        return self.text_dims if self.text_weight > 0 else 0

    @property
    def _fixed_width(self) -> int:
        """Columns before the genres: title tokens, then the text block."""
        return self.title_buckets + self._text_columns

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots pickled before the text block existed load with it off.
        if "_text" not in state:
            state.update(text_dims=0, text_weight=0.0, _text=np.zeros((state["_year"].shape[0], 1)))
        self.__dict__.update(state)
        if "_sparse_count" not in state:  # pickled before the sparse vectors were kept
            self._sparse_columns, self._sparse_values, self._sparse_count = _empty_sparse()
            self._ensure_sparse(self._unit.shape[0])
            for item in np.flatnonzero(self._has_content):
                self._refresh_sparse(int(item))

    def set(self, item: int, features: dict[str, Any]) -> None:
        """Record (or replace) the content of ``item`` from catalog features.

        A ``"text_embedding"`` feature that is not a list of ``text_dims``
        finite numbers is ignored (catalog records come from outside): the
        item then has no text block.
        """
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
        self._text[item] = 0.0
        if self._text_columns:
            embedding = _embedding_or_none(features.get(TEXT_EMBEDDING_FEATURE), self.text_dims)
            if embedding is not None:
                self._text[item, : self.text_dims] = embedding
        self._refresh_unit(item)

    def set_text_embedding(self, item: int, vector: Any) -> None:
        """Give ``item`` a text embedding (rescaled to unit length) and refresh its vector.

        Raises ValueError when ``vector`` is not ``text_dims`` finite numbers.
        Ignored (the block is off) while ``text_dims`` or ``text_weight`` is 0.
        """
        if not self.text_dims:
            return
        embedding = _embedding_or_none(vector, self.text_dims)
        if embedding is None:
            raise ValueError(f"a text embedding must be {self.text_dims} finite numbers")
        if not self._text_columns:
            return
        self._ensure(item + 1)
        self._text[item, : self.text_dims] = embedding
        self._refresh_unit(item)

    def configure_text(self, text_dims: int, text_weight: float) -> None:
        """Turn the text block on (or off, or reweight it) before any item is recorded.

        For a model that builds its own ``ItemContent``. Changing the block's
        width once items have content is refused: user profiles already
        learned in the old layout would no longer line up with new vectors.
        """
        if text_dims < 0 or text_weight < 0:
            raise ValueError("text_dims and text_weight must be >= 0")
        old_columns = self._text_columns
        new_columns = text_dims if text_weight > 0 else 0
        if new_columns != old_columns and self._has_content.any():
            raise ValueError("the text block's width cannot change once items have content")
        self.text_dims = text_dims
        self.text_weight = text_weight
        if self._text.shape[1] < max(text_dims, 1):
            self._text = np.zeros((self._text.shape[0], text_dims))
        if new_columns != old_columns:
            self._unit = np.zeros((self._unit.shape[0], self._fixed_width + self._genres.shape[1]))
        for item in np.flatnonzero(self._has_content):
            self._refresh_unit(int(item))

    def _refresh_unit(self, item: int) -> None:
        """Recompute the item's unit vector and whether it has content at all."""
        text = self._text[item, : self._text_columns]
        self._has_content[item] = bool(
            self._genres[item].any() or self._titles[item].any() or text.any()
        )
        width = self._fixed_width + self._genres.shape[1]
        if self._unit.shape[1] < width:
            wider = np.zeros((self._unit.shape[0], width))
            wider[:, : self._unit.shape[1]] = self._unit
            self._unit = wider
        self._unit = grown(self._unit, item + 1)
        row = np.concatenate(
            [
                self.title_weight * self._titles[item, : self.title_buckets],
                self.text_weight * text,
                self._genres[item],
            ]
        )
        norm = np.linalg.norm(row)
        self._unit[item, : row.shape[0]] = row / norm if norm > 0 else row
        self._refresh_sparse(item)

    def _refresh_sparse(self, item: int) -> None:
        """Copy the nonzeros of the item's unit vector into the sparse table."""
        self._ensure_sparse(item + 1)
        columns = np.flatnonzero(self._unit[item])
        if columns.size > self._sparse_columns.shape[1]:
            width = max(columns.size, 2 * self._sparse_columns.shape[1])
            for name in ("_sparse_columns", "_sparse_values"):
                table = getattr(self, name)
                wider = np.zeros((table.shape[0], width), dtype=table.dtype)
                wider[:, : table.shape[1]] = table
                setattr(self, name, wider)
        self._sparse_count[item] = columns.size
        self._sparse_columns[item, : columns.size] = columns
        self._sparse_values[item, : columns.size] = self._unit[item, columns]

    def _ensure_sparse(self, rows: int) -> None:
        if rows > self._sparse_count.shape[0]:
            self._sparse_columns = grown(self._sparse_columns, rows)
            self._sparse_values = grown(self._sparse_values, rows)
            self._sparse_count = grown(self._sparse_count, rows)

    def clear(self, items: np.ndarray) -> None:
        """Forget the content of expired items (their rows will be reused)."""
        items = items[items < self._year.shape[0]]
        for table in (self._genres, self._titles, self._text, self._unit, self._year, self._price):
            table[items] = 0
        self._has_year[items] = False
        self._has_content[items] = False
        self._sparse_count[items[items < self._sparse_count.shape[0]]] = 0

    def _ensure(self, rows: int) -> None:
        if rows <= self._year.shape[0]:
            return  # every table grows together, so one check covers them all
        self._genres = grown(self._genres, rows)
        self._titles = grown(self._titles, rows)
        self._text = grown(self._text, rows)
        self._year = grown(self._year, rows)
        self._has_year = grown(self._has_year, rows)
        self._price = grown(self._price, rows)
        self._has_content = grown(self._has_content, rows)
        self._unit = grown(self._unit, rows)
        self._ensure_sparse(rows)

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
        """Unit-length content vectors (weighted title tokens, text block, then genres).

        Title (and text) columns come first because their number is fixed: a
        new genre only appends a column, so stored user profiles stay aligned.
        """
        width = self._fixed_width + max(self.n_genres, 1)
        if not items.size:
            return np.zeros((0, width))
        self._ensure(int(items.max()) + 1)
        return self._unit[items, :width]

    def sparse_table(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The unit vectors' nonzeros (columns, values, counts; at least ``rows`` rows) and
        the vectors' width.

        For compiled loops that read the vectors of many items: no copy. Do not modify.
        """
        self._ensure(rows)
        width = self._fixed_width + max(self.n_genres, 1)
        return self._sparse_columns, self._sparse_values, self._sparse_count, width

    def has(self, item: int) -> bool:
        """Whether ``item`` has any content (genres, title tokens or a text embedding)."""
        return item < self._has_content.shape[0] and bool(self._has_content[item])

    def vector(self, item: int) -> np.ndarray:
        """:meth:`vectors` of one item (a view: do not modify)."""
        self._ensure(item + 1)
        return self._unit[item, : self._fixed_width + max(self.n_genres, 1)]

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


def _empty_sparse() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An empty sparse vector table: columns, values (8 per row to start), counts."""
    return np.zeros((0, 8), dtype=np.int64), np.zeros((0, 8)), np.zeros(0, dtype=np.int64)


def _embedding_or_none(value: Any, dims: int) -> np.ndarray | None:
    """``value`` as a unit-length vector of ``dims`` floats, or None if it is not one."""
    if dims <= 0 or isinstance(value, (str, bytes)):
        return None
    try:
        vector = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if vector.shape != (dims,) or not np.isfinite(vector).all():
        return None
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else None


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
        self._decays = np.array(decays, dtype=float)
        self._profiles: dict[int, np.ndarray] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots from when profile lengths were cached here (ranking now
        # computes them in its compiled pass) and the decays were a column.
        state.pop("_norms", None)
        state.pop("_inverse_norms", None)
        if "_decay_column" in state:
            state["_decays"] = state.pop("_decay_column")[:, 0].copy()
        self.__dict__.update(state)

    def learn(self, user: int, item: int, weight: float) -> None:
        if not self.content.has(item):
            return
        vector = self.content.vector(item)
        profiles = self._aligned(user, vector.shape[0])
        decay_and_add(profiles, self._decays, weight, vector)

    def _aligned(self, user: int, width: int) -> np.ndarray:
        profiles = self._profiles.get(user)
        if profiles is None or profiles.shape[1] != width:
            profiles = _resized(profiles, len(self.decays), width)
            self._profiles[user] = profiles
        return profiles

    def aligned_profiles(self, user: int, width: int) -> np.ndarray:
        """The user's profiles over ``width`` content columns (a view: do not modify).

        Shape ``(0, width)`` without a profile. For compiled scoring, which
        computes the cosines (and the profiles' lengths) itself.
        """
        profiles = self._profiles.get(user)
        if profiles is None:
            return np.zeros((0, width))
        if profiles.shape[1] != width:
            profiles = self._aligned(user, width)
        return profiles

    def affinity(self, user: int, items: np.ndarray) -> np.ndarray:
        """Cosine of each profile with each item's content, shape ``(items, decays)``.

        Zero where the user has no profile or the item no content. The numpy
        form of what compiled ranking computes (``stream.ranking_pass.taste_cosine``).
        """
        profiles = self._profiles.get(user)
        if profiles is None or not items.size:
            return np.zeros((items.shape[0], len(self.decays)))
        vectors = self.content.vectors(items)
        if profiles.shape[1] != vectors.shape[1]:
            profiles = self._aligned(user, vectors.shape[1])
        norms = np.sqrt(np.einsum("ij,ij->i", profiles, profiles))
        norms[norms == 0] = 1.0  # an empty profile scores 0
        return (vectors @ profiles.T) * (1.0 / norms)

    def forget(self, user: int) -> None:
        self._profiles.pop(user, None)

    def n_profiles(self) -> int:
        return len(self._profiles)

    def set_profile(self, user: int, profiles: np.ndarray) -> None:
        """Seed a user's profiles (cold start from demographics or another domain)."""
        self._profiles[user] = np.atleast_2d(profiles).copy()

    def profile(self, user: int) -> np.ndarray | None:
        """The user's profiles (a copy: they change only through :meth:`learn`)."""
        profiles = self._profiles.get(user)
        return None if profiles is None else profiles.copy()


def _resized(profiles: np.ndarray | None, rows: int, width: int) -> np.ndarray:
    out = np.zeros((rows, width))
    if profiles is not None:
        n = min(width, profiles.shape[1])
        out[:, :n] = profiles[:, :n]
    return out
