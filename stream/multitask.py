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

This module holds the model itself: its settings, learning, forgetting and
the ranking call. Its mixins hold the rest:

- :mod:`stream.task_features`: the feature layout (``SIGNAL_ROWS``,
  ``FEATURE_NAMES``) and each user's signal matrix and feature rows;
- :mod:`stream.list_entries`: a ranked list's entries (diversity,
  exploration slots, reasons);
- :mod:`stream.cold_transfer`: the cold-start priors of new items and users.
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream.cold_transfer import ColdStartTransfer
from stream.coldstart import ContentEmbeddingMap, SegmentVectors
from stream.entities import grown
from stream.events import Event, Item, UserProfile
from stream.exploration import ThompsonExplorer
from stream.features import ItemContent, UserTaste
from stream.heads import HEAD_ORDER, TaskHeads
from stream.hybrid import HybridRecommender
from stream.kernels import index_of
from stream.list_entries import ListEntries, _Ranking
from stream.model import RecommendedItem
from stream.ranking_pass import rank_user
from stream.segments import SegmentPopularity
from stream.signals import ItemCFProfiles
from stream.task_features import (
    _EMPTY,
    _EMPTY_FLOAT,
    ITEM_STATIC,
    TaskFeatures,
    _profile_id,
)

# Defined in stream.task_features; importable from here as before (snapshots
# written before the split name _Counts under this module, and tests and
# benches import the rest from it).
from stream.task_features import FEATURE_NAMES as FEATURE_NAMES
from stream.task_features import SIGNAL_ROWS as SIGNAL_ROWS
from stream.task_features import _centred_rating as _centred_rating
from stream.task_features import _Counts as _Counts
from stream.task_features import _LastRanking as _LastRanking
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

#: Stand-ins for compiled ranking arguments that are not needed in a call.
_NO_SIGNALS = np.zeros((6, 0))
_NO_ITEMS_MASK = np.zeros(0, dtype=bool)
_NO_SIGNAL_INPUTS = (
    0, _EMPTY_FLOAT, _EMPTY_FLOAT, _EMPTY_FLOAT, _EMPTY_FLOAT, np.zeros((0, 1)), _EMPTY_FLOAT,
    _EMPTY_FLOAT, 0.0, _EMPTY_FLOAT, _EMPTY, _EMPTY_FLOAT, 0.0,
)  # fmt: skip


class MultiTaskRecommender(TaskFeatures, ListEntries, ColdStartTransfer, HybridRecommender):
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
        (memory: this many x 6 x items floats, and never more than
        ``signal_cache_mb``, 256 MiB: fewer users for a large catalog).
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

    def __getstate__(self) -> dict[str, Any]:
        """The model without its signal-matrix cache and last ranking: a cache of
        up to ``vector_cache_size`` users x 6 x items floats (80 MB at 1,024 users
        of MovieLens-100K) is most of a checkpoint's bytes and is rebuilt on demand.

        After a restore, a user ranked before it gets learning-time features
        from their signals as they are then, not as they were when shown; the
        candidate pools (``_last_pools``) are kept, so the relevance head still
        learns from what was offered.
        """
        state = self.__dict__.copy()
        state["_vector_cache"] = OrderedDict()
        state["_ranked_last"] = None
        state["_last_event_row"] = None
        return state

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
            if self._ranked_last is not None and self._ranked_last.user == row:
                # Their last ranking's signals and rows are derived from their history.
                self._ranked_last = None
        self._heads.drop_cached_row()
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

    def state_size(self) -> dict[str, Any]:
        size = super().state_size()
        size["candidate_pools"] = len(self._last_pools)
        size["vector_cache"] = len(self._vector_cache)
        size["taste_profiles"] = self._taste.n_profiles()
        size["profiles"] = len(self._segments)
        size["open_views"] = len(self._open_views)
        size["fresh_items"] = len(self._fresh)
        return size
