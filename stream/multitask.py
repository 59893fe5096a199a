"""The multi-task recommender: candidates from every source, scored by task heads.

Ranking one user goes in four steps:

1. **Signals** over the whole catalog (the hybrid model's): item-CF from the
   user's recency-weighted history, MF embeddings, decayed popularity.
2. **Candidates**: the top ``n_candidates`` items by the signals' blend, plus
   up to ``n_fresh_candidates`` items with little history ranked by content
   affinity (so new items can be found before anyone has engaged with them).
3. **Heads** (:class:`~stream.heads.TaskHeads`, River learners) score every
   candidate from one shared feature vector: relevance, the funnel chain
   (click -> add_to_cart -> purchase), like; the final score weighs the
   tasks with ``task_weights``.
4. **Diversity**: a maximal-marginal-relevance re-rank trades score for
   content novelty within the list, with the knob ``diversity`` (0 = off).
5. **Exploration** (``exploration``, 0 = off): a bounded share of the slots
   goes to items with little evidence, picked by Thompson sampling.

Steps 1 to 3 and the top k are one compiled call
(:func:`~stream.ranking_pass.rank_user`); this class gathers its inputs
and turns its output into the list.

Cold start (``docs/transfer.md``): a cold item's MF embedding carries a prior
predicted from its catalog features by a map learned from the warm items; a
new user's starts at their demographic segment's mean. With ``domain``, a
list holds one domain's items, ranked from the user's history in every domain.

Learning one event: its features are taken *before* the event changes any
state (exactly what ranking saw), the heads learn from them (the relevance
head also from candidates the user passed over), and then every signal learns.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.coldstart import ContentEmbeddingMap, SegmentVectors
from stream.entities import grown
from stream.events import Event, Item, UserProfile
from stream.exploration import ThompsonExplorer
from stream.features import ItemContent, UserTaste
from stream.heads import HEAD_ORDER, TaskHeads
from stream.hybrid import PERSONA_SEPARATOR, HybridRecommender
from stream.kernels import index_of
from stream.model import RecommendedItem
from stream.ranking_pass import (
    fill_features,
    rank_user,
    signal_matrix,
    top_indices,
    with_session_gap,
)
from stream.segments import SegmentPopularity
from stream.signals import ItemCFProfiles
from stream.tasks import OpenViews

#: Value of each behaviour: candidates are ordered by
#: ``odds(relevance) * (1 + sum_t weight_t * p_t)`` (the score is its log),
#: where the funnel and like heads predict how far an engagement goes given
#: that it happens.
DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "click": 0.2,
    "add_to_cart": 0.2,
    "purchase": 0.3,
    "like": 0.2,
}

#: The relevance head starts out ranking by the retrieval blend: before it
#: has learned from anything it agrees with the candidates' order.
RELEVANCE_PRIOR = {"blend": 5.0}

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
#: Stand-ins for compiled ranking arguments that are not needed in a call.
_NO_SIGNALS = np.zeros((6, 0))
_NO_ITEMS_MASK = np.zeros(0, dtype=bool)
_NO_SIGNAL_INPUTS = (
    0, _EMPTY_FLOAT, _EMPTY_FLOAT, _EMPTY_FLOAT, _EMPTY_FLOAT, np.zeros((0, 1)), _EMPTY_FLOAT,
    _EMPTY_FLOAT, 0.0, _EMPTY_FLOAT, _EMPTY, _EMPTY_FLOAT, 0.0,
)  # fmt: skip
#: Upper edges of the item-age bins the cold-start map reads (see ``_transfer_inputs``).
_AGE_EDGES = (1, 2, 3, 4, 5, 10, 20, 1_000)


def _profile_id(user_id: str) -> str:
    """The user id a profile is filed under (a per-domain key without its domain)."""
    return user_id.partition(PERSONA_SEPARATOR)[0]


def _centred_rating(total, n):  # noqa: ANN001, ANN202 - floats or arrays alike
    """Mean rating shrunk towards 3.5 by two pseudo-ratings, centred and scaled to ~[-1, 1].

    Two ratings say less than two hundred; an item with none scores 0.
    """
    return ((total + 3.5 * 2.0) / (n + 2.0) - 3.5) / 1.5


@dataclass(slots=True)
class _Ranking:
    """One user's ranking, before it becomes a list's entries (see ``_rank``)."""

    user_id: str
    user: int | None
    n_items: int
    signals: np.ndarray  # the user's signal matrix (SIGNAL_ROWS x items)
    candidates: np.ndarray  # item rows scored; the last ``n_fresh`` from the fresh source
    n_fresh: int
    predictions: np.ndarray  # per candidate, a column per head (HEAD_ORDER)
    score: np.ndarray  # per candidate, the final score
    positions: np.ndarray  # candidates chosen for the list, in order
    explored: np.ndarray  # item rows for the exploration slots, placed last

    def chosen_items(self) -> list[int]:
        return self.candidates[self.positions].tolist()


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


class MultiTaskRecommender(HybridRecommender):
    """Multi-task heads over collaborative, content and popularity signals.

    Parameters
    ----------
    task_weights
        Value of each behaviour (``click``, ``add_to_cart``, ``purchase``,
        ``like``): the score is ``log(odds(relevance) * (1 + sum_t weight_t * p_t))``.
    task_mode
        ``"chain"`` (ESMM-style funnel) or ``"single"`` (independent heads,
        the counterpart the chain is measured against).
    n_candidates
        Items taken from the signals' blend for the heads to score.
    n_fresh_candidates
        Items with little history added by content affinity.
    fresh_threshold
        Engagements below which an item counts as fresh (cold).
    fresh_pool
        The newest fresh items the content-based candidate source considers.
    n_head_negatives
        Candidates the user passed over, learned as relevance negatives per event.
    head_learning_rate
        SGD step of the River heads.
    diversity
        Maximal-marginal-relevance weight: 0 ranks by score alone; higher
        values trade score for lists whose items differ in content.
    short_recency_decay
        Recency decay of the second, sharper item-CF signal (``cf_recent``).
    recent_cf_weight
        Weight of ``cf_recent`` in the retrieval blend that picks candidates (0 by
        default: 0.5 and 1.0 lowered HR@10 on the first 30,000 MovieLens events).
    vector_cache_size
        Users whose last signal vectors are kept for learning-time features
        (memory: this many x 6 x items floats).
    cold_start_transfer
        Give items with fewer than ``fresh_threshold`` events an MF embedding
        predicted from their content (:class:`~stream.coldstart.ContentEmbeddingMap`,
        fitted on the warm items), so a new item starts near the warm items
        that share its features; False leaves it at its random start.
    transfer_ridge
        Ridge penalty of that content-to-embedding map.
    transfer_refit_every
        Events between refits of the map (and of the segment vectors).
    segment_prior
        Start a new user's MF vector at the mean vector of the warm users of
        their demographic segment (gender and age band, from their profile),
        and rank for a user with a profile but no events from that vector.
    exploration
        Share of each list given to items with little evidence (fewer than
        ``fresh_threshold`` events), picked by Thompson sampling
        (:class:`~stream.exploration.ThompsonExplorer`) and placed last; the
        share is randomly rounded per list and never above ``ceil(exploration * k)``
        slots. 0 turns exploration off.
    **hybrid
        Settings of the underlying signals (see :class:`HybridRecommender`).
    """

    name = "multitask"

    # Bumped whenever the set of fresh items or any item's content changes;
    # class-level defaults keep checkpoints written before they existed loadable.
    _fresh_version = 0
    _fresh_pool_cache: tuple[tuple[int, int], np.ndarray] | None = None
    _head_uniform = _EMPTY_FLOAT
    _head_uniform_at = 0
    # The latest ranking of a known user (see _LastRanking).
    _ranked_last: _LastRanking | None = None
    # The task value weights for the last mask of known heads (see _value_weights).
    _value_weights_last: tuple[np.ndarray, np.ndarray] | None = None

    def __init__(
        self,
        task_weights: dict[str, float] | None = None,
        task_mode: str = "chain",
        n_candidates: int = 100,
        n_fresh_candidates: int = 10,
        fresh_threshold: int = 5,
        fresh_pool: int = 200,
        n_head_negatives: int = 4,
        head_learning_rate: float = 0.03,
        diversity: float = 0.0,
        vector_cache_size: int = 1024,
        short_recency_decay: float = 0.3,
        recent_cf_weight: float = 0.0,
        cold_start_transfer: bool = True,
        transfer_ridge: float = 1.0,
        transfer_refit_every: int = 2000,
        segment_prior: bool = True,
        exploration: float = 0.0,
        **hybrid: Any,
    ) -> None:
        hybrid.setdefault("user_cf", True)
        super().__init__(**hybrid)
        self.task_weights = dict(DEFAULT_TASK_WEIGHTS if task_weights is None else task_weights)
        self.task_mode = task_mode
        self.n_candidates = n_candidates
        self.n_fresh_candidates = n_fresh_candidates
        self.fresh_threshold = fresh_threshold
        self.fresh_pool = fresh_pool
        self.n_head_negatives = n_head_negatives
        self.head_learning_rate = head_learning_rate
        self.diversity = diversity
        self.vector_cache_size = vector_cache_size
        self.short_recency_decay = short_recency_decay
        self.recent_cf_weight = recent_cf_weight
        self.cold_start_transfer = cold_start_transfer
        self.transfer_ridge = transfer_ridge
        self.transfer_refit_every = transfer_refit_every
        self.segment_prior = segment_prior
        self.exploration = exploration
        if not 0.0 <= exploration <= 1.0:
            raise ValueError("exploration must be in [0, 1]")
        if transfer_refit_every < 1:
            raise ValueError("transfer_refit_every must be >= 1")
        unknown = set(self.task_weights) - set(DEFAULT_TASK_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; use {sorted(DEFAULT_TASK_WEIGHTS)}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")
        self._content = ItemContent()
        self._taste = UserTaste(self._content, decays=(0.95, 0.5))
        self._cf_recent = ItemCFProfiles(self._cooccurrence, decay=short_recency_decay)
        self._heads = TaskHeads(
            FEATURE_NAMES,
            mode=task_mode,
            learning_rate=head_learning_rate,
            relevance_prior=RELEVANCE_PRIOR,
        )
        self._user_counts = _Counts()
        self._item_counts = _Counts()
        # Item-side feature columns (see ITEM_STATIC), kept current as items
        # are learned or catalogued, so building features is one gather.
        self._item_static = np.zeros((0, len(ITEM_STATIC)))
        # Fresh items in arrival order (newest last): the cold-start candidate
        # source looks at the newest few, not at every unrated item ever.
        self._fresh: OrderedDict[int, None] = OrderedDict()
        # Each recently ranked user's candidate pool and the features it was
        # scored with (logged at serving time): the relevance head learns from
        # exactly what the ranker saw when the user picked from that pool.
        self._last_pools: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._head_rng = np.random.default_rng(self.seed + 1)
        self._head_uniform = _EMPTY_FLOAT
        self._head_uniform_at = 0
        # Signal vectors of recently ranked users (what their lists were built
        # from). Ranking needs them current; learning takes them as they were
        # when the user was last shown a list, which is what the user
        # responded to, and saves recomputing the whole catalog per event.
        self._state_version = 0
        self._last_event_row: tuple[tuple, np.ndarray] | None = None
        self._open_views = OpenViews()
        self._segments = SegmentPopularity()
        self._vector_cache: OrderedDict[int | str, tuple[int, np.ndarray]] = OrderedDict()
        # Cold start: content -> MF embedding (+ bias) learned from warm items;
        # the prior each cold item's embedding currently carries (rows: items).
        self._content_map = ContentEmbeddingMap(ridge=transfer_ridge)
        self._item_prior = np.zeros((0, self.n_factors + 1))
        self._has_prior = np.zeros(0, dtype=bool)
        self._segment_vectors = SegmentVectors()
        self._since_refit = 0
        self._explorer = ThompsonExplorer(seed=self.seed + 2)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self._ranked_last, tuple):  # a snapshot from before _LastRanking
            self._ranked_last = None
        names = list(self._heads.relevance.names)
        if names != FEATURE_NAMES:
            # Heads learned over another feature layout cannot score today's
            # rows (and the compiled ranking writes every column of a row).
            raise ValueError(
                f"this model's task heads read {len(names)} features, this version of "
                f"streamrec builds {len(FEATURE_NAMES)}: pretrain or checkpoint it again"
            )

    def params(self) -> dict[str, Any]:
        """Every constructor argument, the underlying hybrid's included.

        The hybrid's are read back from the attributes, not from what was
        passed, so a changed default changes :attr:`version` too.
        """
        params = {name: value for name, value in super().params().items() if name != "hybrid"}
        hybrid = inspect.signature(HybridRecommender.__init__).parameters
        params.update({name: getattr(self, name) for name in hybrid if name != "self"})
        return params

    # ------------------------------------------------------------------ learning

    def add_item(self, item: Item) -> None:
        # The item's catalog columns may change: no event row from before.
        self._ranked_last = self._last_event_row = None
        super().add_item(item)
        row = self._items.get(item.item_id)
        assert row is not None
        self._content.set(row, item.features)
        self._fresh_version += 1  # the item's content may have come or gone
        self._refresh_item_static(row, content=True)
        if self.cold_start_transfer and self._content_map.fitted:
            self._apply_item_priors(np.array([row]))

    def add_profile(self, profile: UserProfile) -> None:
        # A profile expires with the user's state, not on its own: profiles of
        # users yet to act are bounded by the compacted profiles topic itself.
        self._segments.set_profile(profile.user_id, profile.features)
        # The user's segment may change: no event row from before.
        self._ranked_last = self._last_event_row = None

    def _refresh_item_static(self, item: int, *, content: bool = False) -> None:
        """Recompute the item's evidence columns (and, with ``content``, its catalog columns)."""
        self._ensure_item_static(item + 1)
        counts = self._item_counts
        counts._ensure(item + 1)
        events = float(counts.events[item])
        fresh = events < self.fresh_threshold
        static = self._item_static[item]
        static[0] = math.log1p(events) / 8.0
        static[1] = float(fresh)
        static[2] = _centred_rating(float(counts.rating_sum[item]), float(counts.rating_n[item]))
        if content:
            year, has_year = self._content.year(np.array([item]))
            price = float(self._content.price(np.array([item]))[0])
            static[3] = math.log1p(price) / 8.0
            static[4] = (float(year[0]) - 1990.0) / 30.0 if has_year[0] else 0.0
        if fresh != (item in self._fresh):
            if fresh:
                self._fresh[item] = None
            else:
                del self._fresh[item]
            self._fresh_version += 1

    def _ensure_item_static(self, rows: int) -> None:
        """Room in the item-side feature table for rows ``0..rows-1``."""
        if rows > self._item_static.shape[0]:
            self._item_static = grown(self._item_static, rows)

    def _learn(self, event: Event) -> None:
        assert event.item_id is not None
        user, item = self._users.get(event.user_id), self._items.get(event.item_id)
        self._learn_heads(event, user, item)
        super()._learn(event)
        self._state_version += 1
        user, item = self._users.get(event.user_id), self._items.get(event.item_id)
        assert user is not None and item is not None
        rating = event.value if event.event_type == "rating" else None
        self._user_counts.add(user, rating)
        self._item_counts.add(item, rating)
        weight = self.event_weight(event)
        self._refresh_item_static(item)
        profile_id = event.user_id if self.domain_transfer else _profile_id(event.user_id)
        self._segments.learn(profile_id, item, weight, event.timestamp)
        if weight > 0:
            self._taste.learn(user, item, weight)
            if self.exploration > 0:
                self._explorer.engaged(item)
        self._since_refit += 1
        if self._since_refit >= self.transfer_refit_every:
            self._since_refit = 0
            self._refit_transfer()

    def _carried_vectors(self, user: int) -> list[tuple[np.ndarray, float]]:
        steps = super()._carried_vectors(user)
        recent = self._cf_recent.carried(user, self._items.capacity)
        return steps if recent is None else [*steps, recent]

    def _new_user(self, user_id: str, row: int) -> None:
        if self.segment_prior:
            prior = self._segment_vectors.mean(self._segments.segment(_profile_id(user_id)))
            if prior is not None:
                self._mf.set_user(row, prior)

    # ------------------------------------------------------------------ transfer

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

    def _learn_heads(self, event: Event, user: int | None, item: int | None) -> None:
        """Heads learn from features as they were before this event."""
        n_items = self._items.capacity
        if item is None or n_items == 0:
            return  # an item never seen has no features yet; nothing to learn from
        row = self._event_row(user, item, event.timestamp, event.user_id)
        # A view is learned once its outcome is known (the user's next view);
        # the clicks, carts and purchases that follow it are that outcome.
        for resolved_row, labels in self._open_views.observe(event, row):
            self._heads.learn_labels(resolved_row, labels)
        if event.event_type == "rating" and event.value is not None:
            self._heads.learn_rating(row, event.value)
        pool = self._last_pools.get(user) if user is not None else None
        if pool is None or self.event_weight(event) <= 0:
            return
        # The relevance head re-ranks the candidate pool, so it learns from the
        # pool as it was offered: the engaged item against others from the
        # same pool. Events whose item was not in the pool teach it nothing
        # about re-ranking (and negatives from outside the pool would bias it
        # towards whatever the pool is not).
        candidates, features = pool
        picked = index_of(candidates, item)
        if picked < 0:
            return
        # Pairwise (RankNet with a linear scorer): the head learns which of
        # two candidates was picked, which is all re-ranking needs.
        self._heads.learn_relevance_pool(
            features, picked, self.n_head_negatives, self._head_draws()
        )

    def _head_draws(self) -> np.ndarray:
        """``n_head_negatives`` uniform numbers that pick this event's passed-over candidates.

        They come from a pre-drawn block: one generator call per thousand
        events instead of one per event.
        """
        need = self.n_head_negatives
        if self._head_uniform_at + need > self._head_uniform.shape[0]:
            self._head_uniform = self._head_rng.random(max(4096, need))
            self._head_uniform_at = 0
        draws = self._head_uniform[self._head_uniform_at : self._head_uniform_at + need]
        self._head_uniform_at += need
        return draws

    def _forget_key(self, user_id: str) -> bool:
        self._open_views.drop(user_id)  # not learned: the user asked to be forgotten
        had_profile = self._segments.segment(user_id) is not None
        self._segments.forget(user_id)
        row = self._users.get(user_id)
        if row is not None:
            self._taste.forget(row)
            self._cf_recent.forget(row)
            self._user_counts.clear(row)
            self._last_pools.pop(row, None)
            self._vector_cache.pop(row, None)
            if self._last_event_row is not None and self._last_event_row[0][0] == row:
                self._last_event_row = None
        self._state_version += 1
        return super()._forget_key(user_id) or had_profile

    def _forget_item_rows(self, rows: np.ndarray) -> None:
        super()._forget_item_rows(rows)
        self._item_counts.clear_rows(rows)
        self._content.clear(rows)
        rows_in = rows[rows < self._item_static.shape[0]]
        self._item_static[rows_in] = 0.0
        for row in rows.tolist():
            self._fresh.pop(row, None)
        self._fresh_version += 1
        rows_in = rows[rows < self._item_prior.shape[0]]
        self._item_prior[rows_in] = 0.0
        self._has_prior[rows_in] = False
        self._explorer.forget_items(rows)
        self._segments.forget_items(rows)
        self._cf_recent.forget_items(rows)
        # Caches over item rows: rebuilt on demand rather than patched.
        self._last_pools.clear()
        self._vector_cache.clear()
        self._last_event_row = None
        self._state_version += 1

    # ------------------------------------------------------------------ features

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
        while len(self._vector_cache) > self.vector_cache_size:
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

    # ------------------------------------------------------------------ prediction

    def predict_tasks(self, event: Event) -> dict[str, float]:
        item = self._items.get(event.item_id) if event.item_id is not None else None
        if item is None:
            return {}
        user_id = self._persona(event.user_id, event.domain)
        user = self._users.get(user_id)
        # As of the user's last ranking: right after it (test-then-learn) that
        # is current; in the service it is what the user was last shown.
        row = self._event_row(user, item, event.timestamp, user_id)
        return self._heads.predict_one(row)

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

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int,
        *,
        with_reasons: bool = True,
        domain: str | None = None,
    ) -> list[list[RecommendedItem]]:
        """Top-``k`` per user; with ``domain``, only items of that domain (or of none known)."""
        n_items = self._items.capacity
        if n_items == 0 or k <= 0:
            return [[] for _ in user_ids]
        outside = self._domains.outside(domain, n_items)
        return [
            self._recommend_user(self._persona(uid, domain), k, n_items, with_reasons, outside)
            for uid in user_ids
        ]

    def recommend_ids(self, user_id: str, k: int, *, domain: str | None = None) -> list[str]:
        """The ids of :meth:`recommend`'s list for one user, from the same ranking,
        without building its entries (what the evaluator reads for every event)."""
        n_items = self._items.capacity
        if n_items == 0 or k <= 0:
            return []
        outside = self._domains.outside(domain, n_items)
        ranking = self._rank(self._persona(user_id, domain), k, n_items, outside)
        if ranking is None:
            return []
        if ranking.explored.size:  # explored entries are scored as they are built
            return [entry.item_id for entry in self._entries(ranking, False)]
        return self._items.externals(ranking.chosen_items())

    def _recommend_user(
        self,
        user_id: str,
        k: int,
        n_items: int,
        with_reasons: bool,
        outside: np.ndarray | None = None,
    ) -> list[RecommendedItem]:
        ranking = self._rank(user_id, k, n_items, outside)
        return [] if ranking is None else self._entries(ranking, with_reasons)

    def _rank(
        self, user_id: str, k: int, n_items: int, outside: np.ndarray | None
    ) -> _Ranking | None:
        """Rank the catalog for one user: which candidates fill the list, in order
        (None when there is no candidate at all)."""
        user = self._users.get(user_id)
        segment = self._segments.segment(_profile_id(user_id)) if user is None else None
        key, prior = self._vector_key(user, segment)
        signals = self._cached_vectors(key, n_items, current=True)
        computed = signals is None
        fresh_pool = _EMPTY
        if self.n_fresh_candidates and user is not None:
            fresh_pool = self._fresh_pool(n_items)
        weights, intercepts, known = self._heads.scoring_arrays()
        pair_inputs = self._pair_inputs(user, user_id, n_items, None)
        # One compiled call: the signals (unless cached), the items not to
        # show, and the ranking itself.
        signals, blocked, candidates, n_fresh, features, predictions, score, chosen = rank_user(
            _NO_SIGNALS if computed else signals,
            self._signal_inputs(user, n_items, prior) if computed else _NO_SIGNAL_INPUTS,
            self._withdrawn,
            self._seen_rows(user),
            _NO_ITEMS_MASK if outside is None else outside,
            self.n_candidates,
            fresh_pool,
            self.n_fresh_candidates,
            pair_inputs,
            weights,
            intercepts,
            known,
            self._heads.mode == "chain",
            self._heads.rating_offset,
            self._value_weights(known),
            k,
        )
        if computed:
            self._store_vectors(key, signals)
        if candidates.size == 0:
            return None
        n_explore = self._explorer.slots(k, self.exploration) if self.exploration > 0 else 0
        explored = _EMPTY
        if n_explore:
            explored = self._explore(blocked, n_items, n_explore)
        if explored.size or self.diversity > 0:
            chosen = np.array(
                self._diversify(candidates, score, k - explored.size, exclude=explored),
                dtype=np.int64,
            )
        if user is not None:
            self._ranked_last = _LastRanking(
                user, self._state_version, candidates, features, signals, pair_inputs
            )
            self._last_pools[user] = (candidates, features)
            self._last_pools.move_to_end(user)
            while len(self._last_pools) > self.vector_cache_size:
                self._last_pools.popitem(last=False)
        return _Ranking(
            user_id, user, n_items, signals, candidates, n_fresh, predictions, score,
            chosen, explored,
        )  # fmt: skip

    def _entries(self, ranking: _Ranking, with_reasons: bool) -> list[RecommendedItem]:
        """The list's entries: item, score, each task's prediction, and (with reasons) why."""
        user_id, user, candidates, n_fresh = (
            ranking.user_id, ranking.user, ranking.candidates, ranking.n_fresh
        )  # fmt: skip
        positions = ranking.positions
        fresh_set = set(candidates[candidates.shape[0] - n_fresh :].tolist()) if n_fresh else set()
        chosen_items = ranking.chosen_items()
        chosen_scores = ranking.score[positions].tolist()
        known_tasks = self._heads.known_tasks()
        tasks = [task for task, _ in known_tasks]
        # One conversion for the whole list, not one per (task, item).
        columns = [column for _, column in known_tasks]
        task_rows = ranking.predictions[positions][:, columns].tolist()
        external = self._items.external
        entries = []
        for at, item in enumerate(chosen_items):
            reason = ""
            if with_reasons:
                source = "fresh" if item in fresh_set else None
                reason = self._reason_for(user_id, user, item, ranking.signals, source)
            scores = dict(zip(tasks, task_rows[at], strict=True))
            entries.append(RecommendedItem(external(item), chosen_scores[at], scores, reason))
        explored = ranking.explored
        if explored.size:
            entries += self._explored_entries(
                user_id, user, explored, ranking.n_items, entries, with_reasons
            )
            self._explorer.shown(np.array([self._items.get(e.item_id) for e in entries]))
        return entries

    def _seen_rows(self, user: int | None) -> np.ndarray:
        """The items the user has seen (never recommended again), as an array."""
        if user is None or not self.exclude_seen:
            return _EMPTY
        return self._history.seen_rows(user)

    def _value_weights(self, known: np.ndarray) -> np.ndarray:
        """``task_weights`` per head (``HEAD_ORDER``), 0 for heads that predict nothing yet.

        Kept for the last ``known`` mask (one of a handful of shared arrays,
        see ``TaskHeads.scoring_arrays``): it changes only when a head first learns.
        """
        cached = self._value_weights_last
        if cached is None or cached[0] is not known:
            weights = np.array([self.task_weights.get(task, 0.0) for task in HEAD_ORDER]) * known
            cached = self._value_weights_last = (known, weights)
        return cached[1]

    def _final_score(self, predictions: dict[str, np.ndarray]) -> np.ndarray:
        """``logit(relevance) + log(1 + sum_t w_t p_t)``; pops ``relevance_logit``."""
        value = 1.0 + sum(
            self.task_weights[task] * values
            for task, values in predictions.items()
            if task in self.task_weights
        )
        # The log of odds(relevance) * value: the relevance logit does not
        # squash distinctions near p = 1 the way p(relevance) would.
        return predictions.pop("relevance_logit") + np.log(value)

    def _explore(self, blocked: np.ndarray, n_items: int, n: int) -> np.ndarray:
        """Up to ``n`` low-evidence items (the newest fresh ones), picked by Thompson sampling."""
        pool = np.fromiter(itertools.islice(reversed(self._fresh), self.fresh_pool), dtype=np.int64)
        pool = pool[pool < n_items]
        pool = pool[~blocked[pool]]
        return self._explorer.pick(pool, n)

    def _explored_entries(
        self,
        user_id: str,
        user: int | None,
        items: np.ndarray,
        n_items: int,
        above: list[RecommendedItem],
        with_reasons: bool,
    ) -> list[RecommendedItem]:
        """Entries of explored items, placed after the ranked ones.

        Each carries its heads' predictions; its score is capped at the score
        of the entry above it, so the list stays sorted best first.
        """
        predictions = self._heads.predict(self._features(user, items, n_items, user_id=user_id))
        score = self._final_score(predictions)
        ceiling = above[-1].score if above else math.inf
        entries = []
        for position, item in enumerate(items.tolist()):
            ceiling = min(ceiling, float(score[position]))
            scores = {task: float(v[position]) for task, v in predictions.items()}
            scores["explore"] = 1.0
            reason = self._reason_for(user_id, user, item, None, "explore") if with_reasons else ""
            entries.append(RecommendedItem(self._items.external(item), ceiling, scores, reason))
        return entries

    def _fresh_pool(self, n_items: int) -> np.ndarray:
        """The newest ``fresh_pool`` fresh items that have content, by row.

        The same for every user until an item turns fresh or warm or its
        content changes, so it is kept until then.
        """
        key = (self._fresh_version, n_items)
        if self._fresh_pool_cache is None or self._fresh_pool_cache[0] != key:
            pool = np.fromiter(
                itertools.islice(reversed(self._fresh), self.fresh_pool), dtype=np.int64
            )
            pool = pool[self._content.has_content(n_items)[pool]]
            pool.sort()
            self._fresh_pool_cache = (key, pool)
        return self._fresh_pool_cache[1]

    def _diversify(
        self, candidates: np.ndarray, score: np.ndarray, k: int, exclude: np.ndarray = _EMPTY
    ) -> list[int]:
        """Positions of the chosen candidates: by score, or by MMR when ``diversity > 0``.

        Candidates in ``exclude`` (items already in the list) are never chosen.
        """
        available = ~np.isin(candidates, exclude) if exclude.size else np.ones(score.size, bool)
        k = min(k, int(available.sum()))
        if k <= 0:
            return []
        if self.diversity <= 0:
            return top_indices(score, available, k).tolist()
        vectors = self._content.vectors(candidates)
        similarity = vectors @ vectors.T
        low, high = score[available].min(), score[available].max()
        relevance = (score - low) / (high - low) if high > low else np.zeros_like(score)
        chosen: list[int] = []
        max_similarity = np.zeros(candidates.size)
        for _ in range(k):
            value = (1 - self.diversity) * relevance - self.diversity * max_similarity
            value[~available] = -np.inf
            pick = int(np.argmax(value))
            chosen.append(pick)
            available[pick] = False
            max_similarity = np.maximum(max_similarity, similarity[pick])
        return chosen

    def _reason_for(
        self,
        user_id: str,
        user: int | None,
        item: int,
        signals: np.ndarray | None,
        source: str | None,
    ) -> str:
        """Why the item is in the list, from the source that put it there.

        ``source``: ``"explore"`` (an exploration slot), ``"fresh"`` (the
        content-affinity candidate source for new items), or None: the
        retrieval signal that weighed most in the item's blend.
        """
        genre = self._content.first_genre(item)
        if source == "explore":
            return "new: we are trying it out" + (f" ({genre})" if genre else "")
        if source == "fresh":
            return "new, in a genre you like"
        assert signals is not None
        parts = {name: float(signals[SIGNAL_ROWS.index(name), item]) for name in self.blend}
        weighted = {name: self.blend[name] * value for name, value in parts.items()}
        top = max(weighted, key=weighted.__getitem__)
        if top == "mf" and weighted["mf"] > 0:
            if user is None:
                # The MF scores came from the user's demographic segment.
                return "liked by people like you"
            if self._transferred(item):
                return (
                    f"new in {genre}, like what you enjoy" if genre else "new, like what you enjoy"
                )
        return self._reason(user_id, item, parts)

    def _transferred(self, item: int) -> bool:
        """Whether the item's embedding is still mostly its content prior (a cold item)."""
        return (
            item < self._has_prior.shape[0]
            and bool(self._has_prior[item])
            and self._item_counts.events.shape[0] > item
            and self._item_counts.events[item] < self.fresh_threshold
        )

    def state_size(self) -> dict[str, Any]:
        size = super().state_size()
        size["candidate_pools"] = len(self._last_pools)
        size["vector_cache"] = len(self._vector_cache)
        size["taste_profiles"] = self._taste.n_profiles()
        size["profiles"] = len(self._segments)
        size["open_views"] = len(self._open_views)
        size["fresh_items"] = len(self._fresh)
        return size


_BLEND_ROWS: dict[tuple[tuple[str, float], ...], tuple[np.ndarray, np.ndarray]] = {}


def _blend_arrays(blend: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The blend as (signal rows, weights) in the dict's order, which fixes the summation order."""
    key = tuple(blend.items())
    arrays = _BLEND_ROWS.get(key)
    if arrays is None:
        rows = np.array([SIGNAL_ROWS.index(name) for name in blend], dtype=np.int64)
        arrays = _BLEND_ROWS[key] = (rows, np.array([blend[name] for name in blend], dtype=float))
    return arrays
