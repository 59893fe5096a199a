"""Anchor models: what a new model has to beat, on the same events and protocol.

Each implements :class:`~stream.model.Recommender` and grows state only when
it learns, never when it scores:

- :class:`PopularityRecommender`: all-time interaction counts.
- :class:`DecayedPopularityRecommender`: counts decayed by age (what is hot now).
- :class:`RiverBiasedMF`: River's ``reco.BiasedMF``, ranked by River's own ``rank()``.
- :class:`ItemCFRecommender`: incremental cosine item-item CF over the user's
  recent history (``recency_decay=1.0``: plain; :class:`RecencyItemCFRecommender`:
  the same with ``0.9``, newer history weighs more).

Their settings are fixed here, not shared with the production model, so an
anchor's figure does not move when the production model is retuned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stream.entities import IdIndex, grown
from stream.events import Event, Item
from stream.history import UserHistory
from stream.model import RecommendedItem, Recommender
from stream.signals import DecayedPopularity, ItemCooccurrence

#: Implicit feedback weight per event type (ratings use their stars where a
#: model regresses them, else count as 1). A dislike is negative: it is kept in
#: the user's seen items but adds to no count or co-occurrence.
IMPLICIT_WEIGHTS: dict[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "add_to_cart": 2.0,
    "purchase": 3.0,
    "rating": 1.0,
    "dislike": -1.0,
}

__all__ = [
    "IMPLICIT_WEIGHTS",
    "DecayedPopularityRecommender",
    "ItemCFRecommender",
    "PopularityRecommender",
    "RecencyItemCFRecommender",
    "RiverBiasedMF",
]


class _Baseline(Recommender):
    """Bookkeeping every anchor shares: dense ids, seen items, withdrawn items, all-time counts.

    Subclasses implement :meth:`_learn` and :meth:`_rank_known`; a user the
    model has never learned from gets the all-time popularity list.
    """

    def _setup(self) -> None:
        self._users = IdIndex()
        self._items = IdIndex()
        self._seen: dict[int, set[int]] = {}
        self._counts = np.zeros(0)
        self._withdrawn = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------ learning

    def learn_one(self, event: Event) -> None:
        if event.event_type == "forget_user":
            self.forget_user(event.user_id)
            return
        assert event.item_id is not None  # the validator guarantees it
        user = self._users.add(event.user_id)
        item = self._items.get(event.item_id)
        if item is None:
            item = self._items.add(event.item_id)
            self._counts = grown(self._counts, item + 1)
            self._withdrawn = grown(self._withdrawn, item + 1)
        weight = IMPLICIT_WEIGHTS.get(event.event_type, 0.0)
        if weight > 0:
            self._counts[item] += 1.0
        self._learn(event, user, item, weight)
        self._seen.setdefault(user, set()).add(item)

    def _learn(self, event: Event, user: int, item: int, weight: float) -> None:
        """Model-specific learning; ``user`` and ``item`` rows already exist."""

    def add_item(self, item: Item) -> None:
        # A catalog record only re-lists a known item: anchors learn items from events.
        row = self._items.get(item.item_id)
        if row is not None:
            self._withdrawn[row] = False

    def withdraw_item(self, item_id: str) -> None:
        row = self._items.get(item_id)
        if row is not None:
            self._withdrawn[row] = True

    def forget_user(self, user_id: str) -> bool:
        row = self._users.remove(user_id)
        if row is None:
            return False
        self._seen.pop(row, None)
        self._forget(user_id, row)
        return True

    def _forget(self, user_id: str, row: int) -> None:
        """Model-specific erasure of a user's personal state."""

    # ------------------------------------------------------------------ ranking

    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        return [self._recommend_one(user_id, k, with_reasons) for user_id in user_ids]

    def _recommend_one(self, user_id: str, k: int, with_reasons: bool) -> list[RecommendedItem]:
        n_items = self._items.capacity
        if n_items == 0 or k <= 0:
            return []
        user = self._users.get(user_id)
        if user is not None:
            known = self._rank_known(user_id, user, k, with_reasons)
            if known is not None:
                return known
        return self._top(self._counts[:n_items].copy(), user, k, "popular", with_reasons)

    def _rank_known(
        self, user_id: str, user: int, k: int, with_reasons: bool
    ) -> list[RecommendedItem] | None:
        """A known user's list, or None to fall back to the popularity list."""
        return None

    def _mask(self, scores: np.ndarray, user: int | None) -> np.ndarray:
        """``scores`` with withdrawn and (for a known user) seen items set to -inf."""
        scores[self._withdrawn[: scores.shape[0]]] = -np.inf
        if user is not None:
            seen = self._seen.get(user)
            if seen:
                scores[list(seen)] = -np.inf
        return scores

    def _top(
        self,
        scores: np.ndarray,
        user: int | None,
        k: int,
        reason: str,
        with_reasons: bool,
    ) -> list[RecommendedItem]:
        scores = self._mask(scores, user)
        chosen = _top_k(scores, k)
        return [
            RecommendedItem(
                self._items.external(int(i)), float(scores[i]), {}, reason if with_reasons else ""
            )
            for i in chosen
        ]

    # ------------------------------------------------------------------ size

    @property
    def n_users(self) -> int:
        return len(self._users)

    @property
    def n_items(self) -> int:
        return len(self._items)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest finite scores, best first; ties go to the lower index."""
    k = min(k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    return top[np.isfinite(scores[top])]


class PopularityRecommender(_Baseline):
    """The most interacted-with items of all time, the same list for everyone.

    Every positive event counts one, whatever its type or stars.
    """

    name = "popularity"

    def __init__(self) -> None:
        self._setup()


class DecayedPopularityRecommender(_Baseline):
    """The most interacted-with items lately: counts decayed by age in event time.

    Parameters
    ----------
    half_life
        Seconds of event time after which an interaction counts half.
    """

    name = "decayed-popularity"

    def __init__(self, half_life: float = 3 * 86400.0) -> None:
        self.half_life = half_life
        self._setup()
        self._decayed = DecayedPopularity(half_life=half_life)

    def _learn(self, event: Event, user: int, item: int, weight: float) -> None:
        if weight > 0:
            self._decayed.learn(item, 1.0, event.timestamp)

    def _recommend_one(self, user_id: str, k: int, with_reasons: bool) -> list[RecommendedItem]:
        n_items = self._items.capacity
        if n_items == 0 or k <= 0:
            return []
        scores = self._decayed.scores(n_items)
        return self._top(scores, self._users.get(user_id), k, "popular now", with_reasons)


class RiverBiasedMF(_Baseline):
    """River's biased matrix factorisation, ranked with River's own ``rank()``.

    Learns ``learn_one(user, item, y)`` with ``y`` the stars of a rating, else
    the event's implicit weight. River keeps its latent tables in
    ``defaultdict``s, so predicting for an id it has not learned would create
    that id: only known users are ranked by River (over the known items they
    have not seen), and anyone else gets the all-time popularity list.

    Parameters
    ----------
    n_factors, learning_rate, init_sigma, seed
        As in the example of River's ``reco.BiasedMF`` docs: 10 factors, SGD
        at 0.025 for biases and latents, latents drawn from N(0, 0.1) with
        seed 71.
    """

    name = "river-biasedmf"

    def __init__(
        self,
        n_factors: int = 10,
        learning_rate: float = 0.025,
        init_sigma: float = 0.1,
        seed: int = 71,
    ) -> None:
        from river import optim, reco  # a heavy import, only for this anchor

        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.init_sigma = init_sigma
        self.seed = seed
        self._setup()
        self._river = reco.BiasedMF(
            n_factors=n_factors,
            bias_optimizer=optim.SGD(learning_rate),
            latent_optimizer=optim.SGD(learning_rate),
            latent_initializer=optim.initializers.Normal(mu=0.0, sigma=init_sigma, seed=seed),
        )

    def _learn(self, event: Event, user: int, item: int, weight: float) -> None:
        y = event.value if event.event_type == "rating" and event.value is not None else weight
        self._river.learn_one(event.user_id, event.item_id, y)

    def _forget(self, user_id: str, row: int) -> None:
        river = self._river
        river.u_biases.pop(user_id, None)
        river.u_latents.pop(user_id, None)

    def _rank_known(
        self, user_id: str, user: int, k: int, with_reasons: bool
    ) -> list[RecommendedItem] | None:
        seen = self._seen.get(user, set())
        withdrawn = self._withdrawn
        candidates = {
            item_id
            for item_id, row in self._items.items()
            if row not in seen and not withdrawn[row]
        }
        ranked = self._river.rank(user_id, candidates)[:k]
        reason = "liked by people with tastes like yours" if with_reasons else ""
        return [
            RecommendedItem(item_id, float(self._river.predict_one(user_id, item_id)), {}, reason)
            for item_id in ranked
        ]

    def predict_tasks(self, event: Event) -> dict[str, float]:
        """Predicted stars, from the parts River has learned (no new ids touched)."""
        river = self._river
        known_user = event.user_id in self._users
        known_item = event.item_id in self._items
        rating = river.global_mean.get()
        if known_user:
            rating += river.u_biases[event.user_id]
        if known_item:
            rating += river.i_biases[event.item_id]
        if known_user and known_item:
            rating += float(np.dot(river.u_latents[event.user_id], river.i_latents[event.item_id]))
        return {"rating": float(rating)}

    def river_state_size(self) -> dict[str, int]:
        """Entries in River's own tables (they grow if an unknown id is ever predicted)."""
        river = self._river
        return {
            "u_biases": len(river.u_biases),
            "i_biases": len(river.i_biases),
            "u_latents": len(river.u_latents),
            "i_latents": len(river.i_latents),
        }


class ItemCFRecommender(_Baseline):
    """Incremental cosine item-item CF over each user's recent history.

    ``score(j) = sum_h r_h * cos(h, j)`` over the user's recent items ``h``,
    with ``r_h = recency_decay ** (steps back from the newest)``. Items no
    history item co-occurs with come after, in order of all-time popularity.

    Parameters
    ----------
    history_window
        Recent interactions kept per user: the items the score sums over.
    pair_window
        An event is paired with this many of the user's most recent items.
    recency_decay
        1.0: every history item weighs the same (plain item-CF); below 1,
        newer history weighs more.
    """

    name = "itemcf"

    def __init__(
        self, history_window: int = 50, pair_window: int = 50, recency_decay: float = 1.0
    ) -> None:
        self.history_window = history_window
        self.pair_window = pair_window
        self.recency_decay = recency_decay
        self._setup()
        self._history = UserHistory(window=history_window)
        self._cooccurrence = ItemCooccurrence(max_pairs_per_event=pair_window)

    def _learn(self, event: Event, user: int, item: int, weight: float) -> None:
        # Each positive interaction counts one, as in the popularity anchors.
        unit = 1.0 if weight > 0 else weight
        recent_items, recent_weights = self._history.recent_arrays(user)
        self._cooccurrence.learn(item, unit, recent_items, recent_weights)
        self._history.add(user, item, unit, event.event_type, event.timestamp)

    def _forget(self, user_id: str, row: int) -> None:
        self._history.forget(row)

    def _rank_known(
        self, user_id: str, user: int, k: int, with_reasons: bool
    ) -> list[RecommendedItem] | None:
        items, weights = self._history.positive_recent(user, self.recency_decay)
        if not items.size:
            return None
        n_items = self._items.capacity
        cf = self._cooccurrence.score(items, weights, n_items)
        popularity = self._counts[:n_items]
        # Lexicographic (CF score, popularity): every CF candidate scores above
        # 2, the popularity fill in [0, 1].
        top_cf = cf.max()
        scores = np.where(
            cf > 0,
            2.0 + cf / (top_cf if top_cf > 0 else 1.0),
            popularity / max(popularity.max(), 1.0),
        )
        entries = self._top(scores, user, k, "popular", False)
        if with_reasons:
            for entry in entries:
                row = self._items.get(entry.item_id)
                assert row is not None
                source = self._cooccurrence.strongest_source(row, items, weights)
                if entry.score > 2.0 and source is not None:
                    entry.reason = f"similar to {self._items.external(source)}"
                else:
                    entry.reason = "popular"
        return entries

    def state_size(self) -> dict[str, Any]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "cooccurrence_pairs": self._cooccurrence.n_pairs(),
        }


class RecencyItemCFRecommender(ItemCFRecommender):
    """:class:`ItemCFRecommender` with recency-weighted history (``recency_decay=0.9``)."""

    name = "itemcf-recency"

    def __init__(
        self, history_window: int = 50, pair_window: int = 50, recency_decay: float = 0.9
    ) -> None:
        super().__init__(history_window, pair_window, recency_decay)
