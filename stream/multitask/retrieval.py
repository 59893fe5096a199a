"""Retrieval and ranking inputs: a user's pool from sources whose cost does not grow with
the catalog, with the feature rows the heads score.

Sources (:data:`~stream.multitask.layout.SOURCES`): neighbours of the user's
recent items (item-CF, at two recencies), items nearest the user's MF
embedding, recent items of users who engaged with the same recent items,
popular now (overall, in the genres the user is engaging with, in their
segment), and new items by content affinity. :class:`Retrieval` gathers the
inputs; :func:`~stream.multitask.ranking_pass.gather_pool` does the work in
one compiled call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.multitask.catalog import ItemCatalog
from stream.multitask.engagers import RecentEngagers
from stream.multitask.layout import FEATURE, FEATURE_NAMES
from stream.multitask.neighbours import ItemNeighbours
from stream.multitask.popular import PopularNow
from stream.multitask.ranking_pass import ANY_DOMAIN, gather_pool
from stream.multitask.users import UserSide
from stream.signals.factorization import OnlineMF

_EMPTY = np.zeros(0, dtype=np.int64)
_NO_SCALES = np.zeros(0)
_EVERY_ITEM = np.array([-1], dtype=np.int64)


class Scratch:
    """Arrays over item rows (and genre codes) that one ranking writes without clearing.

    ``mark[s, c] == epoch`` says ``acc[s, c]`` (source ``s``: cf, cf_recent,
    ucf) was written by the current call, ``in_pool[c] == epoch`` that item
    ``c`` is in the pool being built; each call takes a new epoch. So a call
    costs what it touches, not the catalog. Not pickled: rebuilt on demand.
    """

    def __init__(self) -> None:
        self._empty()

    def _empty(self) -> None:
        self.acc = np.zeros((3, 0))
        self.mark = np.zeros((3, 0), dtype=np.int64)
        self.in_pool = np.zeros(0, dtype=np.int64)
        self.genre_mark = np.zeros(0, dtype=np.int64)
        self.genre_best = np.zeros(0)
        self.epoch = 0

    def next(self, n_items: int, n_genres: int) -> int:
        if n_items > self.in_pool.shape[0] or n_genres > self.genre_mark.shape[0]:
            size = max(n_items, 2 * self.in_pool.shape[0], 1024)
            genres = max(n_genres, 2 * self.genre_mark.shape[0], 64)
            self.acc = np.zeros((3, size))
            self.mark = np.zeros((3, size), dtype=np.int64)
            self.in_pool = np.zeros(size, dtype=np.int64)
            self.genre_mark = np.zeros(genres, dtype=np.int64)
            self.genre_best = np.zeros(genres)
            self.epoch = 0
        self.epoch += 1
        return self.epoch

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._empty()


@dataclass(slots=True)
class UserContext:
    """What retrieval reads about one user, gathered once per ranking."""

    user_id: str
    row: int | None
    history: np.ndarray  # recency-weighted positive items, newest first
    history_weights: np.ndarray
    recent: np.ndarray  # the last few of them, sharply weighted
    recent_weights: np.ndarray
    recent_genres: np.ndarray  # primary genres of the user's newest items, newest first
    segment: str | None
    vector: np.ndarray  # MF embedding (or a segment prior); empty without either
    taste: np.ndarray  # content profiles (slow, fast); (0, width) without any
    seen: np.ndarray
    stats: np.ndarray  # log event count, centred mean rating, session gap


@dataclass(slots=True)
class Pool:
    """Candidates, their raw source scores, feature rows, and the scales the rows used."""

    items: np.ndarray
    raw: np.ndarray
    features: np.ndarray
    scales: np.ndarray


def _distinct(values: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` distinct values, in order."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)[:n]]


def blend_vector(blend: dict[str, float]) -> np.ndarray:
    """The blend as weights over the feature columns."""
    out = np.zeros(len(FEATURE_NAMES))
    for name, weight in blend.items():
        out[FEATURE[name]] = weight
    return out


class Retrieval:
    """Gathers a user's pool from every source.

    Parameters
    ----------
    per_source
        Candidates each scored source contributes at most (``cf``,
        ``cf_recent``, ``mf``, ``ucf``, ``fresh``); the popular lists
        contribute what they hold.
    pool_size
        Candidates kept for the heads, the best by the blend (fresh picks too).
    blend
        Weights of the retrieval blend over feature columns.
    ucf_sources, ucf_per_user
        User-based CF reads the engagers of the user's newest ``ucf_sources``
        items and takes each one's ``ucf_per_user`` newest items.
    recent_genres
        Genres (of the user's newest items) whose popular lists are read.
    mf_exact_limit
        Up to this many items the MF source scans the catalog exactly; beyond
        it, the items of the user's recent genres.
    fresh_pool
        The newest fresh items the content source ranks.
    """

    def __init__(
        self,
        per_source: dict[str, int],
        pool_size: int,
        blend: dict[str, float],
        ucf_sources: int = 5,
        ucf_per_user: int = 8,
        recent_genres: int = 3,
        mf_exact_limit: int = 20_000,
        fresh_pool: int = 200,
    ) -> None:
        self.per_source = per_source
        self.pool_size = pool_size
        self.ucf_sources = ucf_sources
        self.ucf_per_user = ucf_per_user
        self.recent_genres = recent_genres
        self.mf_exact_limit = mf_exact_limit
        self.fresh_pool = fresh_pool
        self._caps = np.array(
            [per_source.get(name, 0) for name in ("cf", "cf_recent", "mf", "ucf", "fresh")],
            dtype=np.int64,
        )
        self._blend = blend_vector(blend)
        self.scratch = Scratch()

    def pool(
        self,
        ctx: UserContext,
        catalog: ItemCatalog,
        users: UserSide,
        neighbours: ItemNeighbours,
        engagers: RecentEngagers,
        popular: PopularNow,
        mf: OnlineMF,
        *,
        extra: int = -1,
        scales: np.ndarray = _NO_SCALES,
        domain: str | None = None,
    ) -> Pool:
        """The user's pool (with ``extra``, an item row, kept in it whatever it is).

        With ``scales``, just the row of ``extra``, scaled as a pool was.
        """
        n_items = catalog.capacity
        genres = _distinct(ctx.recent_genres, self.recent_genres)
        neighbours.reserve(n_items)
        engagers.reserve(n_items)
        if n_items <= self.mf_exact_limit:
            scope = _EVERY_ITEM
        else:
            # Repeats cost a little time, never a duplicate: the pass skips items in the pool.
            scope = np.concatenate([_EMPTY, *(catalog.genre_members(int(g)) for g in genres)])
        popular.reserve(n_items)
        pop_scaled, pop_top = popular.scaled()
        genre_scaled = popular.genre_scaled()
        seg_scaled, seg_top, seg_list = popular.segment_table(ctx.segment)
        vectors, biases = mf.tables(n_items)
        if domain is None:
            domain_code = ANY_DOMAIN
        else:
            domain_code = catalog.domain_codes.get(domain, -3)  # -3: no item has it
        epoch = self.scratch.next(n_items, popular.genre_lists.shape[0])
        fresh = catalog.newest_fresh(self.fresh_pool) if ctx.taste.shape[0] else _EMPTY
        items, raw, features, used_scales = gather_pool(
            -1 if ctx.row is None else ctx.row, ctx.history, ctx.history_weights, ctx.recent,
            ctx.recent_weights, genres, ctx.recent_genres, ctx.seen, ctx.vector, ctx.taste,
            extra, scales, ctx.stats, n_items, neighbours.ids, neighbours.weights,
            neighbours.totals,
            neighbours.inverse, neighbours.alpha,
            engagers.rings, engagers.counts, users.ring_items, users.ring_counts,
            self.ucf_sources, self.ucf_per_user, pop_scaled, pop_top, popular.overall_list,
            genre_scaled, popular.genre_lists, seg_scaled, seg_top, seg_list, vectors, biases,
            scope,
            catalog.genres, catalog.withdrawn, catalog.domain, domain_code, catalog.stats,
            catalog.content_columns, catalog.content_values, fresh, self._caps, self._blend,
            self.pool_size,
            self.scratch.acc, self.scratch.mark, epoch, self.scratch.in_pool,
            self.scratch.genre_mark, self.scratch.genre_best,
        )  # fmt: skip
        return Pool(items, raw, features, used_scales)
