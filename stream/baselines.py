"""Anchor models: what a new model has to beat, on the same events and protocol.

Each implements :class:`~stream.model.Recommender` and grows state only when
it learns, never when it scores:

- :class:`PopularityRecommender`: all-time interaction counts.
- :class:`DecayedPopularityRecommender`: counts decayed by age (what is hot now).
- :class:`GenrePopularityRecommender`: all-time counts within the genre of the
  user's latest item (incremental top lists: no scan of the catalog).
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

from stream.engagement import DEFAULT_EVENT_WEIGHTS
from stream.entities import IdIndex, grown
from stream.events import Event, Item
from stream.history import UserHistory
from stream.model import RecommendedItem, Recommender
from stream.signals import DecayedPopularity, ItemCooccurrence

#: Implicit feedback weight per event type (ratings use their stars where a
#: model regresses them, else count as 1). A dislike is negative: it is kept in
#: the user's seen items but adds to no count or co-occurrence.
IMPLICIT_WEIGHTS: dict[str, float] = DEFAULT_EVENT_WEIGHTS

__all__ = [
    "IMPLICIT_WEIGHTS",
    "DecayedPopularityRecommender",
    "GenrePopularityRecommender",
    "ItemCFRecommender",
    "PopularityRecommender",
    "RecencyItemCFRecommender",
    "RiverBiasedMF",
    "TopCounts",
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
    # One list for everyone: a co-occurrence planted for the probe cannot lift it.
    _unit_test_skips = {"planted_preference"}

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
    # One list for everyone: a co-occurrence planted for the probe cannot lift it.
    _unit_test_skips = {"planted_preference"}

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


class TopCounts:
    """The ``size`` rows of highest count, kept in order while counts only grow.

    Order: count descending, then row ascending. Every row whose count grows
    must be offered (:meth:`offer`) right after; then the list is exactly the
    top ``size`` of the rows offered so far, and an offer costs at most
    ``size`` steps, whatever the number of rows.

    >>> counts = np.array([0.0, 0.0, 0.0])
    >>> top = TopCounts(2)
    >>> for row in (2, 1, 1, 0):
    ...     counts[row] += 1
    ...     top.offer(row, counts)
    >>> top.rows
    [1, 0]
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: list[int] = []
        self._members: set[int] = set()

    def offer(self, row: int, counts: np.ndarray) -> None:
        """``row``'s count (in ``counts``) has grown, or the row is new to this list."""
        rows = self.rows
        count = float(counts[row])
        if row in self._members:
            position = rows.index(row)
        elif len(rows) < self.size:
            rows.append(row)
            self._members.add(row)
            position = len(rows) - 1
        else:
            last = rows[-1]
            if (count, -row) <= (float(counts[last]), -last):
                return
            self._members.discard(last)
            self._members.add(row)
            rows[-1] = row
            position = len(rows) - 1
        # Move up past every row it now outranks: an insertion step of a sorted list.
        while position > 0:
            above = rows[position - 1]
            if (float(counts[above]), -above) >= (count, -row):
                break
            rows[position] = above
            position -= 1
        rows[position] = row


class GenrePopularityRecommender(_Baseline):
    """The most interacted-with items of the genre of the user's latest item.

    An item's genre is the first of its catalog ``genres`` (from its first
    catalog record that has one; an item without is in no genre). The user's
    genre is that of the item of their latest positive event (a dislike does
    not move it). Counts are all-time, every positive event counting one, as in
    :class:`PopularityRecommender`. The list is the genre's most popular items
    the user has not seen, filled up with the global ones; a user with no
    genre (or none known) gets the global list.

    Cost: each genre, and the catalog as a whole, keeps its ``top_n`` items
    in order (:class:`TopCounts`); learning an event re-sorts one entry of
    two lists and a list is read off them, so neither grows with the catalog.
    Only a user who has seen or had withdrawn nearly all of both lists makes
    a list scan the catalog (the genre's items first, then the rest).

    Parameters
    ----------
    top_n
        Items kept per genre and globally.
    """

    name = "genre-popularity"
    # Popularity within a genre: the checks' items have no genres, and a planted
    # co-occurrence is not a count.
    _unit_test_skips = {"planted_preference"}

    def __init__(self, top_n: int = 100) -> None:
        self.top_n = top_n
        self._setup()
        self._genre_rows: dict[str, int] = {}
        self._genre_names: list[str] = []
        self._catalog_genre: dict[str, int] = {}  # item id -> genre row, from the catalog
        self._item_genre = np.zeros(0, dtype=np.int64)  # per item row; -1: none
        self._genre_top: list[TopCounts] = []
        self._global_top = TopCounts(top_n)
        self._user_genre: dict[int, int] = {}

    def add_item(self, item: Item) -> None:
        super().add_item(item)
        genres = item.features.get("genres")
        if item.item_id in self._catalog_genre or not isinstance(genres, list) or not genres:
            return
        name = str(genres[0])
        genre = self._genre_rows.get(name)
        if genre is None:
            genre = self._genre_rows[name] = len(self._genre_names)
            self._genre_names.append(name)
            self._genre_top.append(TopCounts(self.top_n))
        self._catalog_genre[item.item_id] = genre
        row = self._items.get(item.item_id)
        if row is not None and self._item_genre[row] < 0:  # counted before it was catalogued
            self._item_genre[row] = genre
            if self._counts[row] > 0:
                self._genre_top[genre].offer(row, self._counts)

    def _learn(self, event: Event, user: int, item: int, weight: float) -> None:
        if item >= self._item_genre.shape[0]:
            self._item_genre = grown(self._item_genre, item + 1, fill=-2)
        if self._item_genre[item] == -2:  # a new row: its genre, if the catalog gave one
            assert event.item_id is not None
            self._item_genre[item] = self._catalog_genre.get(event.item_id, -1)
        if weight <= 0:
            return
        genre = int(self._item_genre[item])
        self._global_top.offer(item, self._counts)
        if genre >= 0:
            self._genre_top[genre].offer(item, self._counts)
            self._user_genre[user] = genre
        else:
            self._user_genre.pop(user, None)

    def _forget(self, user_id: str, row: int) -> None:
        self._user_genre.pop(row, None)

    def _recommend_one(self, user_id: str, k: int, with_reasons: bool) -> list[RecommendedItem]:
        if self._items.capacity == 0 or k <= 0:
            return []
        user = self._users.get(user_id)
        genre = self._user_genre.get(user) if user is not None else None
        seen = self._seen.get(user, set()) if user is not None else set()
        withdrawn = self._withdrawn
        counts = self._counts
        entries: list[RecommendedItem] = []
        chosen: set[int] = set()
        # Genre items score in (1, 2], the global fill in (0, 1]: one order for both.
        tiers = [(self._global_top.rows, 0.0, "popular")]
        if genre is not None:
            name = self._genre_names[genre]
            tiers.insert(0, (self._genre_top[genre].rows, 1.0, f"popular in {name}"))
        for rows, base, reason in tiers:
            if not rows:
                continue
            scale = float(counts[rows[0]]) + 1.0
            for row in rows:
                if len(entries) == k:
                    break
                if row in seen or row in chosen or withdrawn[row]:
                    continue
                chosen.add(row)
                entries.append(
                    RecommendedItem(
                        self._items.external(row),
                        base + float(counts[row]) / scale,
                        {},
                        reason if with_reasons else "",
                    )
                )
        if len(entries) < k and len(entries) < self._items.capacity:
            return self._scan(user, genre, k, with_reasons)
        return entries

    def _scan(
        self, user: int | None, genre: int | None, k: int, with_reasons: bool
    ) -> list[RecommendedItem]:
        """The rare full pass: the top lists ran out for this user."""
        n_items = self._items.capacity
        scores = self._counts[:n_items] / (self._counts[:n_items].max() + 1.0)
        in_genre = np.zeros(n_items, dtype=bool)
        if genre is not None:
            in_genre = self._item_genre[:n_items] == genre
            scores = scores + in_genre
        entries = self._top(scores, user, k, "popular", with_reasons)
        if with_reasons and genre is not None:
            for entry in entries:
                if entry.score > 1.0:
                    entry.reason = f"popular in {self._genre_names[genre]}"
        return entries

    def state_size(self) -> dict[str, Any]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "genres": len(self._genre_names),
            "longest_top_list": max((len(t.rows) for t in self._genre_top), default=0),
            "global_top_list": len(self._global_top.rows),
        }


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
    # Every click is the regression target 1.0: constant targets teach the
    # factors no preference, so nothing lifts the planted item.
    _unit_test_skips = {"planted_preference"}

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
