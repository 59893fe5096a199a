"""Retrieval: a few hundred candidates for one user from sources whose cost does not grow
with the catalog, and each candidate's raw score from every source.

Sources (:data:`~stream.twostage.layout.SOURCES`): neighbours of the user's
recent items (item-CF, two recencies), items nearest the user's MF
embedding, recent items of users who engaged with the same recent items,
popular now (overall, in the genres the user is engaging with, in the
user's segment), and new items by content affinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.signals.factorization import OnlineMF
from stream.twostage.catalog import ItemCatalog
from stream.twostage.engagers import RecentEngagers
from stream.twostage.kernels import neighbour_user_items
from stream.twostage.layout import SOURCE, SOURCES
from stream.twostage.neighbours import ItemNeighbours
from stream.twostage.popular import PopularNow
from stream.twostage.users import UserSide

_EMPTY = np.zeros(0, dtype=np.int64)
#: The sources whose scores are accumulated sparsely (into a scratch each).
_SPARSE = ("cf", "cf_recent", "ucf")


class Scratch:
    """Two arrays over item rows that sparse accumulations write into without clearing.

    ``mark[c] == epoch`` says ``acc[c]`` was written by the current call; each
    call takes a new epoch. So an accumulation, and reading a score back for
    any item afterwards, costs what it touches, not the catalog.
    """

    def __init__(self) -> None:
        self.acc = np.zeros(0)
        self.mark = np.zeros(0, dtype=np.int64)
        self.epoch = 0

    def next(self, rows: int) -> int:
        if rows > self.acc.shape[0]:
            size = max(rows, 2 * self.acc.shape[0], 1024)
            self.acc = np.zeros(size)
            self.mark = np.zeros(size, dtype=np.int64)
            self.epoch = 0
        self.epoch += 1
        return self.epoch

    def lookup(self, items: np.ndarray, epoch: int) -> np.ndarray:
        """The scores the call of ``epoch`` wrote for ``items`` (0 where it wrote none)."""
        inside = items < self.acc.shape[0]
        out = np.zeros(items.shape[0])
        rows = items[inside]
        out[inside] = np.where(self.mark[rows] == epoch, self.acc[rows], 0.0)
        return out

    def __getstate__(self) -> dict:
        return {"acc": np.zeros(0), "mark": np.zeros(0, dtype=np.int64), "epoch": 0}


@dataclass(slots=True)
class UserContext:
    """What retrieval and the feature rows read about one user, gathered once per ranking."""

    user_id: str
    row: int | None
    history: np.ndarray  # recency-weighted positive items, newest first
    history_weights: np.ndarray
    recent: np.ndarray  # the last few of them, sharply weighted
    recent_weights: np.ndarray
    recent_genres: np.ndarray  # primary genres of the user's newest items, newest first
    segment: str | None
    vector: np.ndarray | None  # MF embedding (or a segment prior), None without either
    taste: np.ndarray | None  # content profiles (slow, fast), None without any
    seen: np.ndarray
    gap: float
    log_count: float
    mean_rating: float


@dataclass(slots=True)
class Pool:
    """Candidates and their raw score from every source (columns :data:`SOURCES`)."""

    items: np.ndarray
    raw: np.ndarray  # (candidates, sources)


class Retrieval:
    """Gathers a user's candidate pool from every source.

    Parameters
    ----------
    per_source
        Candidates each scored source contributes at most (``cf``, ``mf``, ``ucf``,
        ``fresh``); the popularity lists contribute what they hold.
    ucf_sources, ucf_per_user
        User-based CF reads the engagers of the user's newest ``ucf_sources``
        items and takes each one's ``ucf_per_user`` newest items.
    recent_genres
        Genres (of the user's newest items) whose popular lists are read.
    mf_exact_limit
        Up to this many items the MF source scans the catalog exactly (a matrix
        product); beyond it, it scans the items of the pool's genres and popular lists.
    fresh_pool
        The newest fresh items the content source ranks.
    """

    def __init__(
        self,
        per_source: dict[str, int],
        ucf_sources: int = 5,
        ucf_per_user: int = 8,
        recent_genres: int = 3,
        mf_exact_limit: int = 20_000,
        fresh_pool: int = 200,
    ) -> None:
        self.per_source = per_source
        self.ucf_sources = ucf_sources
        self.ucf_per_user = ucf_per_user
        self.recent_genres = recent_genres
        self.mf_exact_limit = mf_exact_limit
        self.fresh_pool = fresh_pool
        # One scratch per sparse source: their scores are read back after all have run.
        self.scratch = {name: Scratch() for name in _SPARSE}

    def pool(
        self,
        ctx: UserContext,
        catalog: ItemCatalog,
        users: UserSide,
        neighbours: ItemNeighbours,
        engagers: RecentEngagers,
        popular: PopularNow,
        mf: OnlineMF,
        extra: np.ndarray = _EMPTY,
    ) -> Pool:
        """Every source's candidates for ``ctx`` (plus ``extra`` items), with raw scores,
        seen and withdrawn items removed (``extra`` is kept whatever it is)."""
        epochs, found = self._accumulate(ctx, catalog, users, neighbours, engagers)
        genres = ctx.recent_genres[: self.recent_genres].tolist()
        popular_lists = [
            popular.top(),
            popular.top_in_genres(genres),
            popular.top_in_segment(ctx.segment),
        ]
        found += popular_lists
        if ctx.vector is not None and self.per_source.get("mf", 0):
            found.append(self._nearest(ctx.vector, catalog, mf, genres, popular_lists))
        if ctx.taste is not None and self.per_source.get("fresh", 0):
            fresh = catalog.newest_fresh(self.fresh_pool)
            affinity = taste_cosines(ctx.taste, catalog.content[fresh])[:, 0]
            found.append(_top(fresh, affinity, self.per_source["fresh"]))
        items = np.unique(np.concatenate([extra, *found]))
        keep = ~catalog.withdrawn[items]
        if ctx.seen.size:
            keep &= ~np.isin(items, ctx.seen)
        if extra.size:
            keep |= np.isin(items, extra)
        items = items[keep]
        return Pool(items, self._raw(ctx, items, epochs, catalog, popular, mf))

    def raw_scores(
        self,
        ctx: UserContext,
        items: np.ndarray,
        catalog: ItemCatalog,
        users: UserSide,
        neighbours: ItemNeighbours,
        engagers: RecentEngagers,
        popular: PopularNow,
        mf: OnlineMF,
    ) -> np.ndarray:
        """Every source's raw score of ``items`` for ``ctx`` (rows of a pool's ``raw``)."""
        epochs, _ = self._accumulate(ctx, catalog, users, neighbours, engagers)
        return self._raw(ctx, items, epochs, catalog, popular, mf)

    def _accumulate(
        self, ctx: UserContext, catalog: ItemCatalog, users: UserSide,
        neighbours: ItemNeighbours, engagers: RecentEngagers,
    ) -> tuple[dict[str, int], list[np.ndarray]]:  # fmt: skip
        """The sparse sources' scores into the scratch (one epoch each), and their best items."""
        n_items = catalog.capacity
        epochs = {name: self.scratch[name].next(n_items) for name in _SPARSE}
        found: list[np.ndarray] = []
        for name, sources, weights in (
            ("cf", ctx.history, ctx.history_weights),
            ("cf_recent", ctx.recent, ctx.recent_weights),
        ):
            scratch = self.scratch[name]
            items, scores = neighbours.scores(
                sources, weights, scratch.acc, scratch.mark, epochs[name]
            )
            found.append(_top(items, scores, self.per_source.get(name, 0)))
        scratch = self.scratch["ucf"]
        if ctx.row is not None and ctx.history.size and engagers.counts.size:
            take = min(self.ucf_sources, ctx.history.shape[0])
            items, scores = neighbour_user_items(
                ctx.row, ctx.history[:take], ctx.history_weights[:take], engagers.rings,
                engagers.counts, users.ring_items, users.ring_counts, self.ucf_per_user,
                scratch.acc, scratch.mark, epochs["ucf"],
            )  # fmt: skip
            found.append(_top(items, scores, self.per_source.get("ucf", 0)))
        return epochs, found

    def _raw(
        self, ctx: UserContext, items: np.ndarray, epochs: dict[str, int], catalog: ItemCatalog,
        popular: PopularNow, mf: OnlineMF,
    ) -> np.ndarray:  # fmt: skip
        raw = np.zeros((items.shape[0], len(SOURCES)))
        for name in _SPARSE:
            raw[:, SOURCE[name]] = self.scratch[name].lookup(items, epochs[name])
        if ctx.vector is not None:
            raw[:, SOURCE["mf"]] = mf.scores_of(ctx.vector, items)
        raw[:, SOURCE["popularity"]] = popular.relative(items)
        raw[:, SOURCE["genre_popularity"]] = popular.relative_in_genre(
            items, catalog.genres[items, 0]
        )
        raw[:, SOURCE["segment_popularity"]] = popular.relative_in_segment(items, ctx.segment)
        if ctx.taste is not None:
            fresh = catalog.stats[items, 1]
            raw[:, SOURCE["fresh"]] = taste_cosines(ctx.taste, catalog.content[items])[:, 0] * fresh
        return raw

    def _nearest(
        self, vector: np.ndarray, catalog: ItemCatalog, mf: OnlineMF, genres: list[int],
        popular_lists: list[np.ndarray],
    ) -> np.ndarray:  # fmt: skip
        """Items with the highest MF score: an exact scan of a small catalog, else of the
        items of the user's genres and the popular lists."""
        take = self.per_source["mf"]
        n_items = catalog.capacity
        if n_items <= self.mf_exact_limit:
            scores = mf.score_vector(vector, n_items)
            scores[catalog.withdrawn[:n_items]] = -np.inf
            return _top(np.arange(n_items), scores, take)
        scope = [catalog.genre_members(g) for g in genres]
        items = np.unique(np.concatenate([*scope, *popular_lists]))
        if not items.size:
            return _EMPTY
        return _top(items, mf.scores_of(vector, items), take)


def _top(items: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` items with the highest finite scores (any order)."""
    if n <= 0 or not items.size:
        return _EMPTY
    if items.shape[0] > n:
        chosen = np.argpartition(-scores, n - 1)[:n]
        items, scores = items[chosen], scores[chosen]
    return items[np.isfinite(scores) & (scores > -np.inf)]


def taste_cosines(taste: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Cosine of each content row with each taste profile, shape (items, profiles)."""
    norms = np.sqrt((taste.astype(np.float64) ** 2).sum(axis=1))
    norms[norms == 0] = 1.0
    return (content @ taste.T) / norms
