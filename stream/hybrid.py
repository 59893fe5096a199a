"""The first production model: item-CF, matrix factorisation and popularity, blended.

Each signal is normalised per user to [0, 1] and blended with fixed weights:

- item co-occurrence over the user's recency-weighted history says "people
  who engaged with what you just did also engaged with this";
- online MF (BPR) generalises beyond direct co-occurrence;
- decayed popularity ranks what is hot now, and is all a new user gets.

Every recommended item carries the reason of the signal that contributed most
to its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stream.domains import PERSONA_SEPARATOR, ItemDomains
from stream.engagement import DEFAULT_EVENT_WEIGHTS, PAST_TENSE, engagement_weight
from stream.entities import IdIndex, grown
from stream.events import DEFAULT_DOMAIN, Event, Item
from stream.history import UserHistory
from stream.lifecycle import ActivityClock
from stream.model import RecommendedItem, Recommender
from stream.signals import (
    DecayedPopularity,
    ItemCFProfiles,
    ItemCooccurrence,
    OnlineMF,
    UserNeighbourhood,
)

#: How strongly each event type says "the user wants this"; a dislike is negative.

#: Blend weights of the signals' per-user normalised scores.
DEFAULT_BLEND: dict[str, float] = {"cf": 1.0, "ucf": 0.0, "mf": 0.2, "popularity": 0.1}


_DAY = 86_400.0

__all__ = ["HybridRecommender", "DEFAULT_BLEND", "DEFAULT_EVENT_WEIGHTS"]


class HybridRecommender(Recommender):
    """Item-CF + online MF + decayed popularity, learned one event at a time.

    Parameters
    ----------
    history_window
        Recent interactions kept per user; the item-CF score sums over them.
    pair_window
        An event is paired (co-occurrence) with this many of the user's most
        recent items: the main cost of learning one event.
    pair_distance_decay
        A pair's weight is multiplied by this per step apart the two items
        are in the user's sequence (1.0: every pair in the window counts fully).
    recency_decay
        Weight of a history item per step back from the newest (item-CF).
    n_factors, learning_rate, regularization, n_negatives
        Online MF settings (see :class:`~stream.signals.OnlineMF`).
    popularity_half_life
        Seconds of event time after which an engagement counts half for popularity.
    blend
        Weights of the normalised ``cf``, ``mf`` and ``popularity`` scores.
    event_weights
        Engagement weight per event type; ratings scale by ``rating_slope``
        per star above or below ``rating_midpoint``.
    rating_midpoint, rating_slope
        A rating ``r`` weighs ``event_weights["rating"] + rating_slope * (r - midpoint)``,
        floored at 0.1: even a low rating means the user chose to watch it.
    exclude_seen
        Never recommend an item the user already interacted with.
    user_cf
        Learn the user-based neighbourhood signal (``ucf``); off by default in
        this model because on MovieLens-100K it lowered HR@10 at any blend
        weight tried (0.3: 0.174, 0.6: 0.163 vs 0.179 without, first 30,000 events).
    domain_transfer
        One history and one embedding per user across domains (True), so what
        a user did in one domain informs their lists in another; False keeps a
        separate state per (user, domain), the counterpart transfer is measured
        against (``docs/transfer.md``).
    user_ttl_seconds, item_ttl_seconds
        A user (item) with no event for this long in event time is expired:
        everything held about it is dropped and its rows are reused, so memory
        stays bounded on an endless stream of new ids. None: never. A catalog
        item's clock starts when its record arrives.
    expiry_every
        Events between two expiry sweeps (each sweep pops only the idle ids).
    seed
        Seed of the random parts (MF initialisation, negative sampling).
    """

    name = "hybrid"

    def __init__(
        self,
        history_window: int = 50,
        pair_window: int = 10,
        pair_distance_decay: float = 1.0,
        cf_alpha: float = 0.5,
        recency_decay: float = 0.9,
        n_factors: int = 32,
        learning_rate: float = 0.05,
        regularization: float = 0.002,
        n_negatives: int = 4,
        popularity_half_life: float = 3 * 86400.0,
        blend: dict[str, float] | None = None,
        event_weights: dict[str, float] | None = None,
        rating_midpoint: float = 3.0,
        rating_slope: float = 0.25,
        exclude_seen: bool = True,
        user_cf: bool = False,
        domain_transfer: bool = True,
        user_ttl_seconds: float | None = 365 * _DAY,
        item_ttl_seconds: float | None = 365 * _DAY,
        expiry_every: int = 1000,
        seed: int = 0,
    ) -> None:
        self.history_window = history_window
        self.pair_window = pair_window
        self.pair_distance_decay = pair_distance_decay
        self.cf_alpha = cf_alpha
        self.recency_decay = recency_decay
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.n_negatives = n_negatives
        self.popularity_half_life = popularity_half_life
        self.blend = dict(DEFAULT_BLEND if blend is None else blend)
        self.event_weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
        self.rating_midpoint = rating_midpoint
        self.rating_slope = rating_slope
        self.exclude_seen = exclude_seen
        self.user_cf = user_cf
        self.domain_transfer = domain_transfer
        self.user_ttl_seconds = user_ttl_seconds
        self.item_ttl_seconds = item_ttl_seconds
        self.expiry_every = expiry_every
        self.seed = seed
        for name, ttl in (
            ("user_ttl_seconds", user_ttl_seconds),
            ("item_ttl_seconds", item_ttl_seconds),
        ):
            if ttl is not None and ttl <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        if expiry_every < 1:
            raise ValueError("expiry_every must be >= 1")
        if self.blend.get("ucf", 0.0) > 0 and not user_cf:
            raise ValueError("blend weight for 'ucf' needs user_cf=True")
        unknown = set(self.blend) - set(DEFAULT_BLEND)
        if unknown:
            raise ValueError(
                f"unknown blend signals {sorted(unknown)}; use {sorted(DEFAULT_BLEND)}"
            )

        self._users = IdIndex()
        self._items = IdIndex()
        self._history = UserHistory(window=history_window)
        self._popularity = DecayedPopularity(half_life=popularity_half_life)
        self._cooccurrence = ItemCooccurrence(
            max_pairs_per_event=pair_window, distance_decay=pair_distance_decay, alpha=cf_alpha
        )
        self._cf_profiles = ItemCFProfiles(self._cooccurrence, decay=recency_decay)
        self._neighbourhood = UserNeighbourhood()
        self._mf = OnlineMF(
            n_factors=n_factors,
            learning_rate=learning_rate,
            regularization=regularization,
            n_negatives=n_negatives,
            seed=seed,
        )
        self._withdrawn = np.zeros(0, dtype=bool)
        self._titles: dict[int, str] = {}
        self._domains = ItemDomains()
        # Last activity of each user and item (event time), for expiry.
        self._user_clock = ActivityClock()
        self._item_clock = ActivityClock()
        self._events_since_sweep = 0
        self._clock = 0.0  # newest event time seen: "now" when ranking and expiring
        self._started = False
        # Per-domain user keys of each user, when domains are kept apart.
        self._personas: dict[str, set[str]] = {}

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
            self._start(event.timestamp)
        self._learn(event)
        if event.timestamp > self._clock:
            self._clock = event.timestamp
        if self.user_ttl_seconds is not None:
            self._user_clock.touch(event.user_id, event.timestamp)
        if self.item_ttl_seconds is not None:
            self._item_clock.touch(event.item_id, event.timestamp)
        self._events_since_sweep += 1
        if self._events_since_sweep >= self.expiry_every:
            self._events_since_sweep = 0
            self.expire_idle()

    def _start(self, timestamp: float) -> None:
        """The first event: records held since start-up begin their idle time now."""
        self._started = True
        self._clock = max(self._clock, timestamp)
        self._user_clock.start(timestamp)
        self._item_clock.start(timestamp)

    def _persona_event(self, event: Event) -> Event:
        """The event under the user's per-domain key (``domain_transfer=False``)."""
        key = self._persona(event.user_id, event.domain)
        self._personas.setdefault(event.user_id, set()).add(key)
        return Event(
            key, event.item_id, event.event_type, event.timestamp, event.value,
            event.event_id, event.domain, event.context,
        )  # fmt: skip

    def _persona(self, user_id: str, domain: str | None) -> str:
        if self.domain_transfer or domain is None or domain == DEFAULT_DOMAIN:
            return user_id
        return f"{user_id}{PERSONA_SEPARATOR}{domain}"

    def _learn(self, event: Event) -> None:
        """Fold a (non-forget) event into every signal."""
        assert event.item_id is not None
        weight = self.event_weight(event)
        user = self._user_row(event.user_id)
        item = self._item_row(event.item_id)
        window_items, window_weights = self._history.recent_arrays(user, self.pair_window)
        # The co-occurrence also steps the user's carried item-CF vectors.
        carried = self._carried_vectors(user)
        self._cooccurrence.learn(item, weight, window_items, window_weights, carried)
        self._popularity.learn(item, weight, event.timestamp)
        self._mf.learn(user, item, weight)
        if self.user_cf:
            self._neighbourhood.learn(user, item, weight)
        self._history.add(user, item, weight, event.event_type, event.timestamp)
        if event.domain != DEFAULT_DOMAIN:
            self._domains.set(item, event.domain)

    def _carried_vectors(self, user: int) -> list[tuple[np.ndarray, float]]:
        """The user's carried item-CF vectors and their decays, for this event's step."""
        step = self._cf_profiles.carried(user, self._items.capacity)
        return [] if step is None else [step]

    def _user_row(self, user_id: str) -> int:
        row = self._users.get(user_id)
        if row is None:
            row = self._users.add(user_id)
            self._mf.add_user(row)
            self._new_user(user_id, row)
        return row

    def _new_user(self, user_id: str, row: int) -> None:  # noqa: B027 - optional hook
        """A user's first event gave them ``row``: subclasses seed their state here."""

    def _item_row(self, item_id: str) -> int:
        row = self._items.get(item_id)
        if row is None:
            row = self._items.add(item_id)
            self._mf.add_item(row)
            self._withdrawn = grown(self._withdrawn, row + 1)
            self._withdrawn[row] = False
        return row

    def add_item(self, item: Item) -> None:
        row = self._item_row(item.item_id)
        self._withdrawn[row] = False
        title = item.features.get("title")
        if isinstance(title, str) and title:
            self._titles[row] = title
        domain = item.features.get("domain")
        if isinstance(domain, str) and domain:
            self._domains.set(row, domain)
        if self.item_ttl_seconds is not None:
            self._item_clock.touch(item.item_id, self._clock if self._started else None)

    def withdraw_item(self, item_id: str) -> None:
        row = self._items.get(item_id)
        if row is not None:
            self._withdrawn[row] = True

    def forget_user(self, user_id: str) -> bool:
        """Erase the user (every per-domain state too): history, embedding, counters, clocks."""
        keys = {user_id} | self._personas.pop(user_id, set())
        found = False
        for key in keys:
            self._user_clock.drop(key)
            found = self._forget_key(key) or found
        return found

    def _forget_key(self, user_id: str) -> bool:
        """Drop the state held under one user key; subclasses add theirs."""
        row = self._users.remove(user_id)
        if row is None:
            return False
        # The user is among the engagers of the items they engaged with only.
        self._neighbourhood.forget(row, items=self._history.seen(row))
        self._history.forget(row)
        self._cf_profiles.forget(row)
        self._mf.forget_user(row)
        return True

    # ------------------------------------------------------------------ expiry

    def expire_idle(self, now: float | None = None) -> dict[str, int]:
        """Expire users and items idle for longer than their TTL (at ``now``, default the clock).

        Called every ``expiry_every`` events; the runtime may call it too.
        Returns how many users and items expired.
        """
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
                    if not personas and base not in self._users:
                        del self._personas[base]
                self._forget_key(key)
        if self.item_ttl_seconds is not None:
            items = self._item_clock.pop_idle(now - self.item_ttl_seconds)
            rows = [row for row in (self._items.remove(i) for i in items) if row is not None]
            if rows:
                self._forget_item_rows(np.array(sorted(rows), dtype=np.int64))
        return {"users": len(users), "items": len(items)}

    def _forget_item_rows(self, rows: np.ndarray) -> None:
        """Clear every table indexed by these (freed) item rows; a reused row starts clean."""
        self._withdrawn[rows] = True  # a free row is never ranked
        for row in rows.tolist():
            self._titles.pop(row, None)
        self._domains.clear(rows)
        self._popularity.forget_items(rows)
        self._cooccurrence.forget_items(rows)
        self._mf.forget_items(rows)
        self._history.forget_items(rows)
        self._cf_profiles.forget_items(rows)
        self._neighbourhood.forget_items(rows)

    # ------------------------------------------------------------------ ranking

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
        user_ids = [self._persona(u, domain) for u in user_ids]
        components = self._component_scores(user_ids, n_items)
        total = sum(self.blend[name] * scores for name, scores in components.items())
        self._mask_unrecommendable(total, user_ids)
        outside = self._domains.outside(domain, n_items)
        if outside is not None:
            total[:, outside] = -np.inf
        k = min(k, n_items)
        top = np.argpartition(-total, k - 1, axis=1)[:, :k]
        results = []
        for row, user_id in enumerate(user_ids):
            chosen = top[row][np.argsort(-total[row, top[row]], kind="stable")]
            chosen = chosen[np.isfinite(total[row, chosen])]
            results.append(
                [
                    self._entry(
                        user_id, int(item), float(total[row, item]), components, row, with_reasons
                    )
                    for item in chosen
                ]
            )
        return results

    def _component_scores(self, user_ids: Sequence[str], n_items: int) -> dict[str, np.ndarray]:
        """Each signal's scores, normalised per user to [0, 1], shape (users, items)."""
        rows = [self._signal_vectors(self._users.get(u), n_items) for u in user_ids]
        return {name: np.vstack([row[name] for row in rows]) for name in DEFAULT_BLEND}

    def _signal_vectors(self, user: int | None, n_items: int) -> dict[str, np.ndarray]:
        """One user's ``cf``, ``ucf``, ``mf`` and ``popularity`` scores over all items, in [0, 1].

        An unknown user (``None``) has only popularity; nothing is created.
        """
        popularity = self._popularity.relative_all(n_items)
        if user is None:
            zeros = np.zeros(n_items)
            return {"cf": zeros, "ucf": zeros, "mf": zeros, "popularity": popularity}
        raw_cf = self._cf_profiles.scores(
            user, n_items, lambda: self._history.positive_recent(user, self.recency_decay)
        )
        cf = _scaled_by_max(raw_cf * self._cooccurrence.inverse_norms(n_items))
        raw_mf = self._mf.score(np.array([user]), n_items)[0]
        low, span = raw_mf.min(), raw_mf.max() - raw_mf.min()
        mf = (raw_mf - low) / span if span > 0 else np.zeros(n_items)
        ucf = np.zeros(n_items)
        if self.user_cf:
            ucf = _scaled_by_max(
                self._neighbourhood.scores(
                    user, n_items, lambda v: self._history.positive_recent(v, self.recency_decay)
                )
            )
        return {"cf": cf, "ucf": ucf, "mf": mf, "popularity": popularity}

    def _mask_unrecommendable(self, total: np.ndarray, user_ids: Sequence[str]) -> None:
        n_items = total.shape[1]
        for row, user_id in enumerate(user_ids):
            total[row, self._blocked(self._users.get(user_id), n_items)] = -np.inf

    def _blocked(self, user: int | None, n_items: int) -> np.ndarray:
        """Items never to recommend to ``user``: withdrawn ones, and what the user saw."""
        blocked = self._withdrawn[:n_items].copy()
        if self.exclude_seen and user is not None:
            seen = self._history.seen(user)
            if seen:
                blocked[list(seen)] = True
        return blocked

    def _entry(
        self,
        user_id: str,
        item: int,
        score: float,
        components: dict[str, np.ndarray],
        row: int,
        with_reasons: bool,
    ) -> RecommendedItem:
        parts = {name: float(components[name][row, item]) for name in components}
        reason = self._reason(user_id, item, parts) if with_reasons else ""
        return RecommendedItem(self._items.external(item), score, parts, reason)

    def _reason(self, user_id: str, item: int, parts: dict[str, float]) -> str:
        """The reason of the signal that added most to this item's score."""
        weighted = {name: self.blend[name] * value for name, value in parts.items()}
        source = max(weighted, key=weighted.__getitem__)
        user = self._users.get(user_id)
        if source == "cf" and user is not None:
            items, weights = self._history.positive_recent(user, self.recency_decay)
            because = self._cooccurrence.strongest_source(item, items, weights)
            if because is not None:
                verb = next(
                    (
                        PAST_TENSE.get(r.event_type, "liked")
                        for r in reversed(self._history.recent(user))
                        if r.item == because
                    ),
                    "liked",
                )
                where = self._domains.of(because)
                elsewhere = where is not None and where != self._domains.of(item)
                return f"similar to {self._label(because)} you {verb}" + (
                    f" in {where}" if elsewhere else ""
                )
        if source == "mf" and user is not None:
            return "liked by people with tastes like yours"
        return "popular now"

    def _label(self, item: int) -> str:
        return self._titles.get(item) or self._items.external(item)

    # ------------------------------------------------------------------ size

    @property
    def n_users(self) -> int:
        return len(self._users)

    @property
    def n_items(self) -> int:
        return len(self._items)

    def state_size(self) -> dict[str, Any]:
        """What the model holds, by table: the runtime gauges memory from it."""
        return {
            "users": self.n_users,
            "items": self.n_items,
            "user_rows": self._users.capacity,
            "item_rows": self._items.capacity,
            "histories": len(self._history),
            "history_seen_items": self._history.n_seen(),
            "cf_profiles": len(self._cf_profiles),
            "neighbour_overlaps": self._neighbourhood.n_overlaps(),
            "cooccurrence_pairs": self._cooccurrence.n_pairs(),
            "tracked_users": len(self._user_clock),
            "tracked_items": len(self._item_clock),
        }


def _scaled_by_max(scores: np.ndarray) -> np.ndarray:
    top = scores.max() if scores.size else 0.0
    return scores / top if top > 0 else scores
