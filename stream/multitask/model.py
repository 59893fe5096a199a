"""The multi-task recommender: retrieval from bounded sources, then ranking by task heads.

Ranking one user:

1. **Retrieval** (:mod:`stream.multitask.retrieval`): candidates from sources
   whose cost does not grow with the catalog (neighbours of recent items,
   nearest MF items, similar users' recent items, popular now overall / in
   the user's genres / in their segment, new items by content).
2. **Pool**: the best ``pool_size`` by the retrieval blend.
3. **Heads** (:class:`~stream.heads.TaskHeads`, River learners) score the
   pool from one shared feature row (:mod:`stream.multitask.features`):
   pairwise relevance, the funnel chain (ESMM), like, rating; the score is
   ``log(odds(relevance) * (1 + sum_t w_t p_t))``.
4. **List** (:mod:`stream.multitask.lists`): diversity re-rank, exploration
   slots, reasons.

Learning one event: the heads learn from the pair's row as it was before the
event (what ranking saw), then the user side and the item side learn.

State is kept in two halves. User side (:class:`~stream.multitask.users.UserSide`
plus the MF user rows): history ring, seen items, counters, taste, segment.
Item side: catalog and statistics, bounded neighbour lists, recent engagers,
popular-now lists, MF item rows, cold-start priors, the heads. Neither holds
a per-user vector over the catalog.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.domains import PERSONA_SEPARATOR
from stream.engagement import DEFAULT_EVENT_WEIGHTS, engagement_weight
from stream.events import DEFAULT_DOMAIN, Event, Item, UserProfile
from stream.exploration import ThompsonExplorer
from stream.heads import HEAD_ORDER, TaskHeads
from stream.lifecycle import ActivityClock
from stream.model import RecommendedItem, Recommender
from stream.multitask import lists
from stream.multitask.catalog import ItemCatalog
from stream.multitask.coldstart import ColdStartPriors
from stream.multitask.engagers import RecentEngagers
from stream.multitask.features import DEFAULT_BLEND, with_gap
from stream.multitask.item_sync import ItemChanges, check_record
from stream.multitask.layout import FEATURE_NAMES, SOURCE
from stream.multitask.neighbours import ItemNeighbours
from stream.multitask.popular import PopularNow
from stream.multitask.ranking_pass import score_rows
from stream.multitask.retrieval import Pool, Retrieval, UserContext
from stream.multitask.users import UserSide
from stream.signals.factorization import OnlineMF
from stream.tasks import OpenViews

#: Version of the pickled model; a file of another version is refused.
FORMAT_VERSION = 1

DEFAULT_TASK_WEIGHTS: dict[str, float] = {
    "click": 0.2,
    "add_to_cart": 0.2,
    "purchase": 0.3,
    "like": 0.2,
}
#: Candidates each scored source contributes at most.
DEFAULT_PER_SOURCE: dict[str, int] = {"cf": 200, "cf_recent": 50, "mf": 100, "ucf": 50, "fresh": 10}
#: The relevance head starts out ranking by the retrieval blend.
RELEVANCE_PRIOR = {"blend": 5.0}
_DAY = 86_400.0
_EMPTY = np.zeros(0, dtype=np.int64)
_NO_FLOATS = np.zeros(0)
#: Attributes derived from the state, left out of pickles.
_CACHES = ("_last_row", "_value_weights_for")


@dataclass(slots=True)
class _LastPool:
    """A known user's latest pool as scored: the relevance head learns from what was offered,
    and the next event's row is read from it."""

    items: np.ndarray
    features: np.ndarray
    scales: np.ndarray
    version: int  # the model's state version when it was ranked


class MultiTaskRecommender(Recommender):
    """Retrieval from bounded candidate sources, then River task heads rank the pool.

    Parameters
    ----------
    history_window
        Interactions kept per user (item-CF sums over them).
    pair_window
        Recent items an engagement is paired with (the co-occurrence).
    pair_distance_decay
        A pair's weight per step apart in the user's sequence.
    neighbours_per_item
        Neighbours each item keeps for sure (it holds up to twice as many):
        128 rather than 64 lifted MovieLens-100K HR@10 from 0.2004 to 0.2081
        and left the 200k-item stream's unchanged (0.2846), for 200 MB more
        there (items x 256 x 8 bytes).
    cf_alpha
        Normalisation of pair weights, ``pair / (total_a ** alpha * total_b ** (1 - alpha))``.
    recency_decay, short_recency_decay, short_window
        Weight per step back of a history item for ``cf``; for ``cf_recent``,
        over the newest ``short_window`` items.
    n_factors, learning_rate, regularization, n_negatives
        Online MF (BPR) settings.
    popularity_half_life, genre_half_life, segment_half_life
        Half-lives (event-time seconds) of popular-now overall, within a genre
        and within a segment (a genre or a segment sees a small share of the
        events: a short half-life would leave its list noisy).
    popular_list_size
        Items kept per popular-now list (overall, each genre, each segment).
    engagers_per_item, ucf_sources, ucf_items_per_user
        User-based CF: recent engagers kept per item; the user's newest items
        whose engagers are read; how many of each engager's newest items count.
    per_source
        Candidates each scored source contributes at most.
    pool_size
        Candidates the heads score, the best by the retrieval blend.
    mf_exact_limit
        Catalog size up to which the MF source scans every item exactly; above
        it, the items of the user's recent genres (``bench/mf_retrieval.py``).
        An exact scan costs ``items x n_factors`` per ranking: at 20,000 items
        it made the 20k-item stream slower than the 200k-item one.
    fresh_threshold, fresh_pool
        Engagements below which an item is fresh; the newest fresh items the
        content source ranks.
    blend
        Weights of the retrieval blend (feature names of the pool).
    task_weights, task_mode, n_head_negatives, head_learning_rate
        The heads: value of each behaviour; ``"chain"`` (ESMM) or
        ``"single"``; passed-over candidates learned per engagement; SGD step.
    diversity, exploration
        MMR weight (0 = off); share of the list for exploration slots (0 = off).
    cold_start_transfer, transfer_ridge, transfer_refit_every, segment_prior
        Cold items' MF embeddings from content; the map's ridge; events between
        refits; new users' MF vectors from their segment.
    event_weights, rating_midpoint, rating_slope
        Engagement weight per event type; a rating ``r`` weighs
        ``weight["rating"] + slope * (r - midpoint)``, floored at 0.1.
    exclude_seen
        Never recommend an item the user interacted with.
    domain_transfer
        One user state across domains (True), so what a user did in one domain
        informs their lists in another; False keeps a state per (user, domain),
        the counterpart transfer is measured against (``docs/transfer.md``).
    user_ttl_seconds, item_ttl_seconds, expiry_every
        Idle time after which a user (item) is expired; events between sweeps.
    last_pools
        Users whose latest pool is kept for learning.
    seed
        Seed of every random part.
    """

    name = "multitask"

    def __init__(  # noqa: PLR0913
        self,
        history_window: int = 30,
        pair_window: int = 10,
        pair_distance_decay: float = 0.9,
        neighbours_per_item: int = 128,
        cf_alpha: float = 0.5,
        recency_decay: float = 0.85,
        short_recency_decay: float = 0.3,
        short_window: int = 3,
        n_factors: int = 32,
        learning_rate: float = 0.05,
        regularization: float = 0.002,
        n_negatives: int = 4,
        popularity_half_life: float = 3 * _DAY,
        genre_half_life: float = 14 * _DAY,
        segment_half_life: float = 14 * _DAY,
        popular_list_size: int = 50,
        engagers_per_item: int = 8,
        ucf_sources: int = 5,
        ucf_items_per_user: int = 8,
        per_source: dict[str, int] | None = None,
        pool_size: int = 300,
        mf_exact_limit: int = 2_000,
        fresh_threshold: int = 5,
        fresh_pool: int = 200,
        blend: dict[str, float] | None = None,
        task_weights: dict[str, float] | None = None,
        task_mode: str = "chain",
        n_head_negatives: int = 4,
        head_learning_rate: float = 0.03,
        diversity: float = 0.0,
        exploration: float = 0.0,
        cold_start_transfer: bool = True,
        transfer_ridge: float = 1.0,
        transfer_refit_every: int = 2000,
        segment_prior: bool = True,
        event_weights: dict[str, float] | None = None,
        rating_midpoint: float = 3.0,
        rating_slope: float = 0.25,
        exclude_seen: bool = True,
        domain_transfer: bool = True,
        user_ttl_seconds: float | None = 365 * _DAY,
        item_ttl_seconds: float | None = 365 * _DAY,
        expiry_every: int = 1000,
        last_pools: int = 1024,
        seed: int = 0,
    ) -> None:
        self.history_window = history_window
        self.pair_window = pair_window
        self.pair_distance_decay = pair_distance_decay
        self.neighbours_per_item = neighbours_per_item
        self.cf_alpha = cf_alpha
        self.recency_decay = recency_decay
        self.short_recency_decay = short_recency_decay
        self.short_window = short_window
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.n_negatives = n_negatives
        self.popularity_half_life = popularity_half_life
        self.genre_half_life = genre_half_life
        self.segment_half_life = segment_half_life
        self.popular_list_size = popular_list_size
        self.engagers_per_item = engagers_per_item
        self.ucf_sources = ucf_sources
        self.ucf_items_per_user = ucf_items_per_user
        self.per_source = dict(DEFAULT_PER_SOURCE if per_source is None else per_source)
        self.pool_size = pool_size
        self.mf_exact_limit = mf_exact_limit
        self.fresh_threshold = fresh_threshold
        self.fresh_pool = fresh_pool
        self.blend = dict(DEFAULT_BLEND if blend is None else blend)
        self.task_weights = dict(DEFAULT_TASK_WEIGHTS if task_weights is None else task_weights)
        self.task_mode = task_mode
        self.n_head_negatives = n_head_negatives
        self.head_learning_rate = head_learning_rate
        self.diversity = diversity
        self.exploration = exploration
        self.cold_start_transfer = cold_start_transfer
        self.transfer_ridge = transfer_ridge
        self.transfer_refit_every = transfer_refit_every
        self.segment_prior = segment_prior
        self.event_weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
        self.rating_midpoint = rating_midpoint
        self.rating_slope = rating_slope
        self.exclude_seen = exclude_seen
        self.domain_transfer = domain_transfer
        self.user_ttl_seconds = user_ttl_seconds
        self.item_ttl_seconds = item_ttl_seconds
        self.expiry_every = expiry_every
        self.last_pools = last_pools
        self.seed = seed
        self._check_settings()

        # Item side.
        self._catalog = ItemCatalog(fresh_threshold=fresh_threshold)
        self._neighbours = ItemNeighbours(neighbours_per_item, pair_distance_decay, cf_alpha)
        self._engagers = RecentEngagers(engagers_per_item)
        self._popular = PopularNow(
            popularity_half_life, genre_half_life, segment_half_life, popular_list_size
        )
        self._priors = ColdStartPriors(transfer_ridge, fresh_threshold, seed)
        self._heads = TaskHeads(
            FEATURE_NAMES, mode=task_mode, learning_rate=head_learning_rate,
            relevance_prior=RELEVANCE_PRIOR,
        )  # fmt: skip
        # User side.
        self._users = UserSide(history_window, self._catalog.content.shape[1])
        self._open_views = OpenViews()
        # MF: user rows are user side, item rows item side.
        self._mf = OnlineMF(n_factors, learning_rate, regularization, n_negatives, seed=seed)
        self._retrieval = Retrieval(
            self.per_source, pool_size, self.blend, ucf_sources, ucf_items_per_user,
            mf_exact_limit=mf_exact_limit, fresh_pool=fresh_pool,
        )  # fmt: skip
        # The row of the last (user, item, state version, time) asked for: an
        # evaluator predicts an event's tasks and then learns it, a row each.
        self._last_row: tuple[tuple, np.ndarray] | None = None
        self._value_weights_for: tuple[np.ndarray, np.ndarray] | None = None
        self._explorer = ThompsonExplorer(seed=seed + 2)
        self._pools: OrderedDict[int, _LastPool] = OrderedDict()
        self._head_rng = np.random.default_rng(seed + 1)
        self._user_clock = ActivityClock()
        self._item_clock = ActivityClock()
        self._clock = 0.0
        self._started = False
        self._version = 0
        self._events_since_sweep = 0
        self._since_refit = 0
        # Per-domain user keys of each user, when domains are kept apart.
        self._personas: dict[str, set[str]] = {}
        # Own item-side changes, recorded once the model shares its item side.
        self._changes: ItemChanges | None = None

    def _check_settings(self) -> None:
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError("exploration must be in [0, 1]")
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError("diversity must be in [0, 1]")
        if self.transfer_refit_every < 1 or self.expiry_every < 1:
            raise ValueError("transfer_refit_every and expiry_every must be >= 1")
        if self.pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        for name in ("user_ttl_seconds", "item_ttl_seconds"):
            ttl = getattr(self, name)
            if ttl is not None and ttl <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        unknown = set(self.task_weights) - set(DEFAULT_TASK_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; use {sorted(DEFAULT_TASK_WEIGHTS)}")
        unknown = set(self.blend) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(
                f"unknown blend columns {sorted(unknown)}; use names of {FEATURE_NAMES}"
            )
        unknown = set(self.per_source) - set(SOURCE)
        if unknown:
            raise ValueError(f"unknown sources {sorted(unknown)}; use {sorted(SOURCE)}")

    # ------------------------------------------------------------------ format

    def __getstate__(self) -> dict[str, Any]:
        """The model's state, without its caches (rebuilt on demand), and its format."""
        state = {**self.__dict__, "_format": FORMAT_VERSION}
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        found = state.get("_format")
        if found != FORMAT_VERSION:
            raise ValueError(
                f"this {self.name} model was saved in format {found!r}; this version of "
                f"streamrec reads format {FORMAT_VERSION}: pretrain or checkpoint it again"
            )
        state.pop("_format")
        self.__dict__.update(state)
        for cache in _CACHES:
            setattr(self, cache, None)

    @property
    def version(self) -> str:
        text = json.dumps(self.params(), sort_keys=True, default=repr)
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"

    # ------------------------------------------------------------------ learning

    def event_weight(self, event: Event) -> float:
        return engagement_weight(event, self.event_weights, self.rating_midpoint, self.rating_slope)

    def learn_one(self, event: Event) -> None:
        if event.event_type == "forget_user":
            self.forget_user(event.user_id)
            return
        assert event.item_id is not None  # the validator guarantees it
        if not self.domain_transfer and event.domain != DEFAULT_DOMAIN:
            event = self._persona_event(event)
        if not self._started:
            self._started = True
            self._clock = max(self._clock, event.timestamp)
            self._user_clock.start(event.timestamp)
            self._item_clock.start(event.timestamp)
        weight = self.event_weight(event)
        self._learn_heads(event, weight)
        self._learn_state(event, weight)
        self._clock = max(self._clock, event.timestamp)
        if self.user_ttl_seconds is not None:
            self._user_clock.touch(event.user_id, event.timestamp)
        if self.item_ttl_seconds is not None:
            self._item_clock.touch(event.item_id, event.timestamp)
        self._events_since_sweep += 1
        if self._events_since_sweep >= self.expiry_every:
            self._events_since_sweep = 0
            self.expire_idle()
        self._since_refit += 1
        if self._since_refit >= self.transfer_refit_every:
            self._since_refit = 0
            self._refit_priors()

    def _persona(self, user_id: str, domain: str | None) -> str:
        if self.domain_transfer or domain is None or domain == DEFAULT_DOMAIN:
            return user_id
        return f"{user_id}{PERSONA_SEPARATOR}{domain}"

    def _persona_event(self, event: Event) -> Event:
        """The event under the user's per-domain key (``domain_transfer=False``)."""
        key = self._persona(event.user_id, event.domain)
        self._personas.setdefault(event.user_id, set()).add(key)
        return Event(
            key, event.item_id, event.event_type, event.timestamp, event.value,
            event.event_id, event.domain, event.context,
        )  # fmt: skip

    def _learn_state(self, event: Event, weight: float) -> None:
        """Every part learns the event: user side, then item side."""
        assert event.item_id is not None
        users, catalog = self._users, self._catalog
        user, new_user = users.row(event.user_id)
        item, new_item = catalog.row(event.item_id)
        if new_user:
            self._mf.add_user(user)
            prior = (
                self._priors.user_prior(users.segment(event.user_id))
                if self.segment_prior
                else None
            )
            if prior is not None:
                self._mf.set_user(user, prior)
        if new_item:
            self._mf.add_item(item, self._item_seed(event.item_id))
        window, window_weights, _ = users.recent(user, self.pair_window)
        window = window[::-1].copy()
        amounts = self._neighbours.learn(
            item, weight, window, window_weights[::-1].astype(np.float64)
        )
        changes = self._changes
        if changes is not None:
            # Only the engaged item's step is shared: sharing the negatives' pushes as
            # well doubled the records and left HR@10 as it was (4 partitions,
            # MovieLens-100K: 0.2017 with them, 0.2023 without); they stay local.
            changes.before_mf_step(np.array([item]), self._mf)
        self._mf.learn(user, item, weight)
        self._popular.learn(
            item, weight, event.timestamp, catalog.genres[item], users.segment(event.user_id)
        )
        if weight > 0:
            self._engagers.learn(item, user)
            if self.exploration > 0:
                self._explorer.engaged(item)
        rating = event.value if event.event_type == "rating" else None
        content = catalog.content[item] if catalog.has_content[item] else None
        users.learn(user, item, weight, event.event_type, event.timestamp, rating, content)
        catalog.learn(item, rating)
        if changes is not None:
            changes.engaged(
                item, weight, event.timestamp, rating, window, amounts,
                users.segment(event.user_id),
            )  # fmt: skip
        if event.domain != DEFAULT_DOMAIN:
            catalog.set_domain(item, event.domain)
        self._version += 1

    def _item_seed(self, item_id: str) -> int:
        """The seed of an item's first MF vector: its id's, so that every model sharing
        the item side starts the item at the same point."""
        return zlib.crc32(item_id.encode()) ^ (self.seed * 0x9E3779B1 & 0xFFFFFFFF)

    def _learn_heads(self, event: Event, weight: float) -> None:
        """The heads learn from the pair's features as they were before this event."""
        assert event.item_id is not None
        item = self._catalog.ids.get(event.item_id)
        if item is None:
            return  # an item never seen has no features yet
        user = self._users.ids.get(event.user_id)
        row = self._event_row(event.user_id, user, item, event.timestamp)
        # A view is learned once its outcome is known (the user's next view).
        for resolved, labels in self._open_views.observe(event, row):
            self._heads.learn_labels(resolved, labels)
        if event.event_type == "rating" and event.value is not None:
            self._heads.learn_rating(row, event.value)
        pool = self._pools.get(user) if user is not None else None
        if pool is None or weight <= 0:
            return
        # The relevance head re-ranks the pool, so it learns from the pool as
        # offered: the engaged item against others from the same pool.
        hit = np.flatnonzero(pool.items == item)
        if hit.size:
            draws = self._head_rng.random(self.n_head_negatives)
            self._heads.learn_relevance_pool(
                pool.features, int(hit[0]), self.n_head_negatives, draws
            )

    def _event_row(self, user_id: str, user: int | None, item: int, timestamp: float) -> np.ndarray:
        """The feature row of (user, item) as ranking would score it now."""
        key = (user_id, item, self._version, timestamp)
        if self._last_row is not None and self._last_row[0] == key:
            return self._last_row[1]
        pool = self._pools.get(user) if user is not None else None
        if pool is not None and pool.version == self._version:
            hit = np.flatnonzero(pool.items == item)
            if hit.size:
                row = with_gap(pool.features[hit[0]], self._users.gap(user, timestamp))
                self._last_row = (key, row)
                return row
        ctx = self._context(user_id, user, timestamp)
        # Outside the pool (or the pool is stale): the item's row alone, scaled
        # as the user's last pool was; a user never ranked gets a pool of their own.
        scales = pool.scales if pool is not None else np.zeros(0)
        found = self._pool(ctx, extra=item, scales=scales)
        row = found.features[int(np.flatnonzero(found.items == item)[0])]
        self._last_row = (key, row)
        return row

    def _refit_priors(self) -> None:
        if self.cold_start_transfer:
            cold = self._catalog.newest_fresh(self.fresh_pool)
            self._priors.refit(self._catalog, self._mf, cold)
        if self.segment_prior:
            self._priors.refit_segments(self._users, self._mf)

    # ------------------------------------------------------------------ sharing the item side

    def share_item_side(self) -> None:
        """Start recording this model's own item-side changes for :meth:`take_item_changes`."""
        if self._changes is None:
            self._changes = ItemChanges(
                self.popularity_half_life, self.genre_half_life, self.segment_half_life
            )
            self._changes.start_heads(self._heads)

    def take_item_changes(self) -> list[dict[str, Any]]:
        """This model's item-side changes since the last call, as records for other models
        (:mod:`stream.multitask.item_sync`); empty until :meth:`share_item_side`."""
        if self._changes is None:
            return []
        return self._changes.take(self._catalog, self._mf, self._heads)

    def merge_item_changes(self, records: Sequence[dict[str, Any]]) -> None:
        """Add what other models learned on the item side (their :meth:`take_item_changes`)."""
        for record in records:
            check_record(record)
            if "heads" in record:
                self._merge_heads(record)
            else:
                self._merge_item(record)
        self._version += 1

    def _shared_row(self, item_id: str) -> int:
        row, new = self._catalog.row(item_id)
        if new:
            self._mf.add_item(row, self._item_seed(item_id))
        return row

    def _merge_item(self, record: dict[str, Any]) -> None:
        row = self._shared_row(record["item"])
        if "events" in record:
            self._catalog.merge(row, record["events"], record["rating_sum"], record["rating_n"])
            others = [self._shared_row(i) for i in record.get("pair_items", ())]
            self._neighbours.merge(
                row, record["total"], np.array(others, dtype=np.int64),
                np.frombuffer(record.get("pair_weights", b""), dtype="<f4").astype(np.float64),
            )  # fmt: skip
            self._popular.merge(
                row, record["at"], record["overall"], record["in_genre"], record["segments"],
                self._catalog.genres[row],
            )  # fmt: skip
            if self.item_ttl_seconds is not None:
                self._item_clock.touch(record["item"], record["at"])
        if "mf" in record:
            vector = np.frombuffer(record["mf"], dtype="<f4").astype(np.float64)
            bias = float(record["mf_bias"])
            self._mf.shift_items(np.array([row]), vector[None, :], np.array([bias]))
            if self._changes is not None:
                self._changes.merged_mf(row, vector, bias)

    def _merge_heads(self, record: dict[str, Any]) -> None:
        weights = np.asarray(record["heads"], dtype=np.float64)
        intercepts = np.asarray(record["intercepts"], dtype=np.float64)
        learned = np.asarray(record["learned"], dtype=np.int64)
        self._heads.add(weights, intercepts, learned)
        if self._changes is not None:
            self._changes.merged_heads(weights, intercepts, learned)

    # ------------------------------------------------------------------ side records

    def add_item(self, item: Item) -> None:
        row, new = self._catalog.row(item.item_id)
        if new:
            self._mf.add_item(row, self._item_seed(item.item_id))
        self._catalog.restore(row)
        self._catalog.set_features(row, item.features)
        if self.cold_start_transfer:
            self._priors.apply(self._catalog, self._mf, np.array([row]))
        if self.item_ttl_seconds is not None:
            self._item_clock.touch(item.item_id, self._clock if self._started else None)
        self._version += 1

    def withdraw_item(self, item_id: str) -> None:
        row = self._catalog.ids.get(item_id)
        if row is not None:
            self._catalog.withdraw(row)
            self._version += 1

    def add_profile(self, profile: UserProfile) -> None:
        self._users.set_profile(profile.user_id, profile.features)
        self._version += 1

    # ------------------------------------------------------------------ forgetting and expiry

    def forget_user(self, user_id: str) -> bool:
        """Erase the user (every per-domain state too): history, embedding, counters, clocks."""
        found = False
        for key in {user_id} | self._personas.pop(user_id, set()):
            found = self._forget_key(key) or found
        return found

    def _forget_key(self, user_id: str) -> bool:
        self._open_views.drop(user_id)  # not learned: the user asked to be forgotten
        self._user_clock.drop(user_id)
        found, row, seen = self._users.forget(user_id)
        if row is not None:
            self._mf.forget_user(row)
            self._engagers.forget_user(row, seen)
            self._pools.pop(row, None)
        self._heads.drop_cached_row()
        self._last_row = None
        self._version += 1
        return found

    def expire_idle(self, now: float | None = None) -> dict[str, int]:
        """Expire users and items idle for longer than their TTL; returns how many."""
        now = self._clock if now is None else now
        users: list[str] = []
        items: list[str] = []
        if self.user_ttl_seconds is not None:
            users = self._user_clock.pop_idle(now - self.user_ttl_seconds)
            for key in users:
                base = key.partition(PERSONA_SEPARATOR)[0]
                personas = self._personas.get(base)
                if personas is not None:
                    personas.discard(key)
                    if not personas and base not in self._users.ids:
                        del self._personas[base]
                self._forget_key(key)
        if self.item_ttl_seconds is not None:
            items = self._item_clock.pop_idle(now - self.item_ttl_seconds)
            rows = [r for r in (self._catalog.remove(i) for i in items) if r is not None]
            if rows:
                self._forget_item_rows(np.array(sorted(rows), dtype=np.int64))
        return {"users": len(users), "items": len(items)}

    def _forget_item_rows(self, rows: np.ndarray) -> None:
        self._neighbours.forget_items(rows)
        self._engagers.forget_items(rows)
        self._popular.forget_items(rows)
        self._mf.forget_items(rows)
        self._users.forget_items(rows)
        self._explorer.forget_items(rows)
        self._priors.forget_items(rows)
        self._pools.clear()  # pools name item rows that may be reused
        self._version += 1

    # ------------------------------------------------------------------ ranking

    def _context(self, user_id: str, user: int | None, now: float) -> UserContext:
        users, catalog = self._users, self._catalog
        segment = users.segment(user_id)
        width = catalog.content.shape[1]
        if user is None:
            prior = self._priors.user_prior(segment) if self.segment_prior else None
            return UserContext(
                user_id, None, _EMPTY, _NO_FLOATS, _EMPTY, _NO_FLOATS, _EMPTY, segment,
                _NO_FLOATS if prior is None else prior, np.zeros((0, width), dtype=np.float32),
                _EMPTY, np.array([0.0, 0.0, 1.0]),
            )  # fmt: skip
        history, weights = users.recency_weighted(user, self.recency_decay)
        recent, recent_weights = users.recency_weighted(
            user, self.short_recency_decay, self.short_window
        )
        newest, _, _ = users.recent(user, 10)
        genres = catalog.genres[newest[newest >= 0], 0]
        log_count, mean_rating = users.evidence(user)
        return UserContext(
            user_id, user, history, weights, recent, recent_weights,
            genres[genres >= 0].astype(np.int64), segment, self._mf.user_vector(user),
            users.taste[user] if users.has_taste[user] else np.zeros((0, width), np.float32),
            users.seen_rows(user) if self.exclude_seen else _EMPTY,
            np.array([log_count, mean_rating, users.gap(user, now)]),
        )  # fmt: skip

    def _pool(
        self, ctx: UserContext, *, extra: int = -1, scales: np.ndarray = _NO_FLOATS,
        domain: str | None = None,
    ) -> Pool:  # fmt: skip
        return self._retrieval.pool(
            ctx, self._catalog, self._users, self._neighbours, self._engagers, self._popular,
            self._mf, extra=extra, scales=scales, domain=domain,
        )  # fmt: skip

    def _value_weights(self, known: np.ndarray) -> np.ndarray:
        """``task_weights`` per head row (``HEAD_ORDER``), 0 for heads that predict nothing yet.

        Kept for the last ``known`` mask (one of a handful of shared arrays,
        see ``TaskHeads.scoring_arrays``): it changes only when a head first learns.
        """
        cached = self._value_weights_for
        if cached is None or cached[0] is not known:
            weights = np.array([self.task_weights.get(task, 0.0) for task in HEAD_ORDER]) * known
            cached = self._value_weights_for = (known, weights)
        return cached[1]

    def _rank(self, user_id: str, k: int, domain: str | None) -> lists.Ranked | None:
        user = self._users.ids.get(user_id)
        ctx = self._context(user_id, user, self._clock)
        pool = self._pool(ctx, domain=domain)
        if not pool.items.size:
            return None
        weights, intercepts, known = self._heads.scoring_arrays()
        predictions, scores = score_rows(
            pool.features, weights, intercepts, known, self._heads.mode == "chain",
            self._heads.rating_offset, self._value_weights(known),
        )  # fmt: skip
        if user is not None:
            self._pools[user] = _LastPool(pool.items, pool.features, pool.scales, self._version)
            self._pools.move_to_end(user)
            while len(self._pools) > self.last_pools:
                self._pools.popitem(last=False)
        return lists.choose(
            ctx, pool.items, pool.features, predictions, known, scores, k, self.diversity,
            self.exploration, self._explorer, self._catalog,
        )  # fmt: skip

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int,
        *,
        with_reasons: bool = True,
        domain: str | None = None,
    ) -> list[list[RecommendedItem]]:
        """Top-``k`` per user; with ``domain``, only items of that domain (or of none known)."""
        out = []
        for user_id in (self._persona(u, domain) for u in user_ids):
            ranked = self._rank(user_id, k, domain) if k > 0 and self._catalog.capacity else None
            out.append(
                [] if ranked is None
                else lists.entries(
                    ranked, self._catalog, self._users, self._neighbours, with_reasons
                )
            )  # fmt: skip
        return out

    def recommend_ids(self, user_id: str, k: int, *, domain: str | None = None) -> list[str]:
        if k <= 0 or not self._catalog.capacity:
            return []
        ranked = self._rank(self._persona(user_id, domain), k, domain)
        return [] if ranked is None else self._catalog.ids.externals(ranked.chosen.tolist())

    def predict_tasks(self, event: Event) -> dict[str, float]:
        item = self._catalog.ids.get(event.item_id) if event.item_id is not None else None
        if item is None:
            return {}
        user_id = self._persona(event.user_id, event.domain)
        user = self._users.ids.get(user_id)
        return self._heads.predict_one(self._event_row(user_id, user, item, event.timestamp))

    # ------------------------------------------------------------------ size

    @property
    def n_users(self) -> int:
        return len(self._users.ids)

    @property
    def n_items(self) -> int:
        return len(self._catalog.ids)

    def state_size(self) -> dict[str, Any]:
        """What the model holds, by table: the runtime gauges memory from it."""
        return {
            **self._users.size(),
            **self._catalog.size(),
            "neighbour_pairs": self._neighbours.n_pairs(),
            "candidate_pools": len(self._pools),
            "open_views": len(self._open_views),
            "tracked_users": len(self._user_clock),
            "tracked_items": len(self._item_clock),
        }
