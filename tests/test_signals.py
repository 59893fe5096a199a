"""The signal sources on their own: popularity decay, co-occurrence, factorisation."""

from __future__ import annotations

import numpy as np
import pytest

from stream.entities import IdIndex, grown
from stream.evaluation.online import RollingHitRate
from stream.history import UserHistory
from stream.signals import DecayedPopularity, ItemCooccurrence, OnlineMF


def test_popularity_halves_per_half_life_and_survives_rebasing():
    pop = DecayedPopularity(half_life=1.0)
    pop.learn(0, 1.0, timestamp=0.0)
    pop.learn(1, 1.0, timestamp=100.0)  # 100 half-lives later: forces a rebase
    scores = pop.scores(2)
    assert scores[1] == pytest.approx(1.0)
    assert scores[0] == pytest.approx(2.0**-100, rel=1e-6)
    assert np.isfinite(scores).all()


def test_popularity_ignores_dislikes():
    pop = DecayedPopularity()
    pop.learn(0, -1.0, timestamp=0.0)
    assert pop.scores(1)[0] == 0.0


def test_popularity_relative_scores_need_no_pass_over_the_catalog():
    pop = DecayedPopularity(half_life=5.0)
    rng = np.random.default_rng(0)
    for t in range(300):  # long enough to rebase several times
        pop.learn(int(rng.integers(0, 20)), float(rng.random()), timestamp=float(t))
    full = pop.scores(25)
    assert np.allclose(pop.relative_all(25), full / full.max())
    assert np.allclose(pop.relative(np.array([3, 24, 7])), full[[3, 24, 7]] / full.max())
    pop.forget_item(int(full.argmax()))
    full = pop.scores(25)
    assert pop.relative_all(25).max() == pytest.approx(1.0)
    assert np.allclose(pop.relative_all(25), full / full.max())


def test_compiled_bpr_step_matches_the_textbook_update():
    mf = OnlineMF(n_factors=8, n_negatives=3, learning_rate=0.1, regularization=0.01, seed=3)
    for row in range(10):
        mf.add_item(row)
    mf.add_user(0)
    users, items, bias = mf._users.copy(), mf._items.copy(), mf._item_bias.copy()
    bias[:10] = np.arange(10) / 10.0  # tables grow in blocks: only the first 10 rows are items
    mf._item_bias[:] = bias
    draws = mf._rng.random(3)  # the draws the next step will use
    mf._rng = np.random.default_rng(3)
    mf._uniform, mf._uniform_at = np.concatenate([draws, np.zeros(4093)]), 0
    mf.learn(0, 4, weight=2.0)
    # The reference: numpy, straight from the formulas in _bpr_step's docstring.
    negatives = [j for j in (draws * 10).astype(int) if j != 4]
    p, lr, reg = users[0].copy(), 0.1, 0.01
    margins = np.array([(items[4] - items[j]) @ p + bias[4] - bias[j] for j in negatives])
    grads = 2.0 / (1.0 + np.exp(margins))
    expected_items = items.copy()
    expected_items[4] += lr * (grads.sum() * p - reg * items[4])
    for g, j in zip(grads, negatives, strict=True):
        expected_items[j] -= lr * (g * p + reg * items[j])
    step = sum(g * (items[4] - items[j]) for g, j in zip(grads, negatives, strict=True))
    assert np.allclose(mf._users[0], p + lr * (step - reg * p))
    assert np.allclose(mf._items, expected_items)
    assert mf._item_bias[4] == pytest.approx(bias[4] + lr * (grads.sum() - reg * bias[4]))


def test_cooccurrence_is_cosine_and_windowed():
    cf = ItemCooccurrence(max_pairs_per_event=1)
    cf.learn(0, 1.0, [], [])
    cf.learn(1, 1.0, [0], [1.0])
    cf.learn(2, 1.0, [0, 1], [1.0, 1.0])  # window 1: pairs only with item 1
    assert cf.similarity(0, 1) == pytest.approx(1.0)
    assert cf.similarity(1, 2) == pytest.approx(1 / np.sqrt(1 * 1))
    assert cf.similarity(0, 2) == 0.0
    assert cf.n_pairs() == 4


def test_cooccurrence_score_names_the_strongest_source():
    cf = ItemCooccurrence()
    for _ in range(3):
        cf.learn(0, 1.0, [], [])
        cf.learn(5, 1.0, [0], [1.0])
    cf.learn(1, 1.0, [], [])
    cf.learn(5, 1.0, [1], [1.0])
    history, weights = np.array([0, 1]), np.array([1.0, 1.0])
    scores = cf.score(history, weights, n_items=6)
    assert scores.argmax() == 5
    assert cf.strongest_source(5, history, weights) == 0


def test_mf_learns_a_planted_block_structure():
    rng = np.random.default_rng(0)
    mf = OnlineMF(n_factors=8, seed=0)
    for row in range(20):
        mf.add_user(row)
    for item in range(20):
        mf.add_item(item)
    # Users 0-9 like items 0-9, users 10-19 like items 10-19.
    for _ in range(4000):
        user = int(rng.integers(20))
        item = int(rng.integers(10)) + (10 if user >= 10 else 0)
        mf.learn(user, item, 1.0)
    scores = mf.score(np.arange(20), 20)
    own = np.where(np.arange(20)[:, None] // 10 == np.arange(20)[None, :] // 10, scores, np.nan)
    other = np.where(np.isnan(own), scores, np.nan)
    assert (np.nanmin(own, axis=1) > np.nanmax(other, axis=1)).mean() > 0.9


def test_history_weights_recent_items_most():
    history = UserHistory(window=3)
    for n, item in enumerate([7, 8, 9, 10]):
        history.add(0, item, 1.0, "click", float(n))
    items, weights = history.positive_recent(0, decay=0.5)
    assert items.tolist() == [10, 9, 8]  # window of 3, newest first
    assert weights.tolist() == [1.0, 0.5, 0.25]
    assert history.seen(0) == {7, 8, 9, 10}


def test_id_index_reuses_freed_rows_and_grown_keeps_data():
    index = IdIndex()
    assert [index.add(x) for x in "abc"] == [0, 1, 2]
    index.remove("b")
    assert index.add("d") == 1 and index.external(1) == "d" and len(index) == 3
    assert index.externals([2, 0, 1]) == ["c", "a", "d"]
    index.remove("a")
    with pytest.raises(KeyError, match="row 0 is free"):
        index.externals([1, 0])
    array = grown(np.arange(3.0), 10)
    assert array.shape[0] >= 10 and array[:3].tolist() == [0.0, 1.0, 2.0]


def test_rolling_hit_rate_forgets_old_outcomes():
    hits = RollingHitRate(k=1, window=2)
    hits.published("u", ["a"])
    for item in ["a", "a", "b", "b"]:
        hits.observe("u", item)
    assert hits.rate == 0.0 and hits.overall_rate == 0.5


def test_user_cf_scores_equal_the_numpy_sum_over_neighbours():
    """The compiled sum gives numpy's numbers, bit for bit (figures measured before it hold)."""
    from stream.history import UserHistory
    from stream.signals import UserNeighbourhood

    rng = np.random.default_rng(11)
    history, neighbourhood = UserHistory(window=20), UserNeighbourhood()
    for step in range(3000):
        user, item = int(rng.integers(60)), int(rng.integers(80))
        weight = float(rng.choice([0.5, 1.0, 2.0, -1.0]))
        neighbourhood.learn(user, item, weight)
        history.add(user, item, weight, "click", float(step))

    def recent_of(v):
        return history.positive_recent(v, 0.9)

    checked = 0
    for user in range(60):
        others, sims = neighbourhood.neighbours(user)
        expected = np.zeros(70)  # fewer items than exist: items beyond it are skipped
        for other, sim in zip(others.tolist(), sims.tolist(), strict=True):
            items, weights = recent_of(other)
            expected[items[items < 70]] += sim * weights[items < 70]
        scores = neighbourhood.scores(user, 70, recent_of)
        assert np.array_equal(scores, expected)
        checked += bool(expected.any())
    assert checked > 50


class _DictNeighbourhood:
    """The user-CF overlaps as Python dicts (how they were kept before the pair table)."""

    def __init__(self, n_neighbours: int = 30) -> None:
        from collections import deque

        self.n_neighbours = n_neighbours
        self.engagers: dict[int, deque[int]] = {}
        self.overlap: dict[int, dict[int, float]] = {}
        self.totals: dict[int, float] = {}
        self._deque = deque

    def learn(self, user: int, item: int, weight: float) -> None:
        if weight <= 0:
            return
        self.totals[user] = self.totals.get(user, 0.0) + weight
        engagers = self.engagers.setdefault(item, self._deque(maxlen=30))
        mine = self.overlap.setdefault(user, {})
        for other in set(engagers):
            if other != user:
                mine[other] = mine.get(other, 0.0) + weight
                theirs = self.overlap.setdefault(other, {})
                theirs[user] = theirs.get(user, 0.0) + weight
        engagers.append(user)

    def forget(self, user: int) -> None:
        for other in self.overlap.pop(user, {}):
            self.overlap[other].pop(user, None)
        for engagers in self.engagers.values():
            kept = [u for u in engagers if u != user]
            engagers.clear()
            engagers.extend(kept)
        self.totals.pop(user, None)

    def neighbours(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        overlap = self.overlap.get(user)
        if not overlap:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        others = np.fromiter(overlap.keys(), dtype=np.int64)
        counts = np.fromiter(overlap.values(), dtype=np.float64)
        totals = np.array([self.totals.get(v, 1.0) for v in others.tolist()])
        sims = counts / np.sqrt(self.totals.get(user, 1.0) * totals)
        take = min(self.n_neighbours, sims.size)
        top = np.argpartition(-sims, take - 1)[:take]
        return others[top], sims[top]


def test_user_neighbours_are_the_ones_dicts_of_overlaps_gave():
    """Same neighbours, same order, same similarities, through forgets: even among ties
    (integer weights make many), which the order of a user's overlaps decides."""
    from stream.signals import UserNeighbourhood

    rng = np.random.default_rng(5)
    reference, neighbourhood = _DictNeighbourhood(), UserNeighbourhood(refresh_every=1)
    for step in range(6000):
        user, item = int(rng.integers(150)), int(rng.integers(60))
        weight = float(rng.choice([1.0, 2.0, -1.0]))
        reference.learn(user, item, weight)
        neighbourhood.learn(user, item, weight)
        if step % 1000 == 999:
            gone = int(rng.integers(150))
            reference.forget(gone)
            neighbourhood.forget(gone)
    tied = 0
    for user in range(150):
        expected_others, expected_sims = reference.neighbours(user)
        others, sims = neighbourhood.neighbours(user)
        assert others.tolist() == expected_others.tolist()
        assert sims.tolist() == expected_sims.tolist()
        tied += len(set(sims.tolist())) < sims.size
    assert tied > 50  # the order of ties was exercised
    assert neighbourhood.n_overlaps() == sum(len(row) for row in reference.overlap.values())

    # A pickle from when the overlaps were dicts loads to the same neighbours.
    from stream.signals import UserNeighbourhood as Loaded

    old = Loaded.__new__(Loaded)
    state = {k: v for k, v in neighbourhood.__dict__.items() if k not in ("_overlaps", "_totals")}
    state.update(_overlap=reference.overlap, _totals=reference.totals, _cache={}, _since_refresh={})
    old.__setstate__(state)
    for user in range(150):
        assert old.neighbours(user)[0].tolist() == reference.neighbours(user)[0].tolist()


def test_seen_rows_track_the_seen_set_through_adds_forgets_and_pickles():
    import pickle

    rng = np.random.default_rng(3)
    history = UserHistory(window=5)
    for step in range(3000):
        user, item = int(rng.integers(20)), int(rng.integers(400))
        history.add(user, item, 1.0, "click", float(step))
        if step % 7 == 0:  # read mid-stream, so later adds append to the array
            rows = history.seen_rows(user).tolist()
            assert len(rows) == len(set(rows)) and set(rows) == history.seen(user)
        if step % 500 == 499:
            history.forget_items(rng.choice(400, size=30, replace=False))
        if step == 1500:
            history.forget(3)
            history = pickle.loads(pickle.dumps(history))
    for user in range(20):
        rows = history.seen_rows(user).tolist()
        assert len(rows) == len(set(rows)) and set(rows) == history.seen(user)
    assert history.seen_rows(99).size == 0


def _reference_positive_recent(recent, decay):
    """How positive_recent was computed over a deque of interactions (newest last)."""
    weights: dict[int, float] = {}
    factor = 1.0
    for interaction in reversed(recent):
        if interaction.weight > 0 and interaction.item not in weights:
            weights[interaction.item] = interaction.weight * factor
        factor *= decay
    return list(weights), list(weights.values())


@pytest.mark.parametrize("window", [7, 20])  # 20: rings start smaller and grow
def test_history_rings_hold_what_a_deque_of_the_last_window_holds(window):
    import pickle
    from collections import deque

    from stream.history import Interaction

    rng = np.random.default_rng(8)
    history = UserHistory(window=window)
    reference: dict[int, deque] = {}
    kinds = ["view", "click", "rating", "purchase"]
    for step in range(2000):
        user, item = int(rng.integers(12)), int(rng.integers(15))
        weight = float(rng.choice([0.5, 1.0, 2.0, -1.0]))
        kind = kinds[int(rng.integers(len(kinds)))]
        history.add(user, item, weight, kind, float(step))
        reference.setdefault(user, deque(maxlen=window)).append(
            Interaction(item, weight, kind, float(step))
        )
        if step % 300 == 299:  # expiry drops items from every history, order kept
            gone = rng.choice(15, size=2, replace=False)
            history.forget_items(gone)
            for recent in reference.values():
                kept = [r for r in recent if r.item not in set(gone.tolist())]
                recent.clear()
                recent.extend(kept)
        if step == 1000:
            history = pickle.loads(pickle.dumps(history))
        expected = reference[user]
        assert history.recent(user) == list(expected)
        items, weights = history.recent_arrays(user, 3)
        assert items.tolist() == [r.item for r in list(expected)[-3:]]
        assert weights.tolist() == [r.weight for r in list(expected)[-3:]]
        assert history.last_time(user) == (expected[-1].timestamp if expected else None)
        for decay in (0.9, 0.3):
            got = history.positive_recent(user, decay)
            assert (got[0].tolist(), got[1].tolist()) == _reference_positive_recent(expected, decay)


def test_history_from_a_pickle_of_deques_loads():
    from collections import deque

    from stream.history import Interaction

    old = UserHistory.__new__(UserHistory)
    recent = deque([Interaction(4, 1.0, "click", 1.0), Interaction(9, 2.0, "rating", 2.0)], 50)
    old.__setstate__({"window": 50, "_recent": {3: recent}, "_seen": {3: {4, 9}}, "_weighted": {}})
    assert old.recent(3) == list(recent)
    assert old.positive_recent(3, 0.5)[0].tolist() == [9, 4]
    old.add(3, 5, 1.0, "view", 3.0)
    assert [r.item for r in old.recent(3)] == [4, 9, 5] and old.seen(3) == {4, 5, 9}


def test_a_user_whose_first_engagement_found_no_one_can_still_be_a_neighbour():
    """A user gets a row at their first engagement, overlaps or not, so a later
    engager of the same item can pair with them (a missing row would raise)."""
    from stream.signals import UserNeighbourhood

    neighbourhood = UserNeighbourhood()
    neighbourhood.learn(0, 1, 1.0)
    neighbourhood.learn(5000, 7, 1.0)  # alone on item 7, with a row far beyond the others
    neighbourhood.learn(3, 7, 1.0)
    assert neighbourhood.neighbours(3)[0].tolist() == [5000]
    assert neighbourhood.neighbours(5000)[0].tolist() == [3]


def _cf_world(n_users: int = 60, n_items: int = 80, steps: int = 3000):
    """A co-occurrence and histories learned from random engagements."""
    from stream.history import UserHistory
    from stream.signals import ItemCooccurrence

    rng = np.random.default_rng(5)
    history, cooccurrence = UserHistory(window=20), ItemCooccurrence()
    for step in range(steps):
        user, item = int(rng.integers(n_users)), int(rng.integers(n_items))
        items, weights = history.recent_arrays(user)
        cooccurrence.learn(item, 1.0, items, weights)
        history.add(user, item, 1.0, "click", float(step))
    return history, cooccurrence


def test_carried_cf_vectors_stay_within_their_budget_and_evicted_ones_are_rebuilt():
    from stream.signals import ItemCFProfiles

    history, cooccurrence = _cf_world()
    n_items = 80
    budget_mb = 10 * n_items * 8 / 2**20  # room for ten users' vectors
    bounded = ItemCFProfiles(cooccurrence, budget_mb=budget_mb)
    for user in range(60):
        bounded.scores(user, n_items, lambda u=user: history.positive_recent(u, 0.9))
        assert bounded._vectors.held_bytes <= bounded._vectors.budget_bytes
    assert len(bounded) == 10 and 0 not in bounded._vectors and 59 in bounded._vectors
    assert set(bounded._since_refresh) <= set(bounded._vectors)
    # An evicted user is not stepped, and gets the vector a fresh profile builds.
    assert bounded.carried(0, n_items) is None
    fresh = ItemCFProfiles(cooccurrence)
    for user in (0, 59):
        recent = lambda u=user: history.positive_recent(u, 0.9)  # noqa: E731
        assert np.array_equal(
            bounded.scores(user, n_items, recent), fresh.scores(user, n_items, recent)
        )
    held = bounded._vectors.held_bytes
    bounded.forget(59)
    assert bounded._vectors.held_bytes == held - n_items * 8 and 59 not in bounded._vectors


def test_carried_cf_vectors_from_a_pickle_of_a_plain_dict_load():
    from stream.signals import ItemCFProfiles

    _, cooccurrence = _cf_world(steps=200)
    profiles = ItemCFProfiles(cooccurrence)
    state = {**profiles.__dict__, "_vectors": {3: np.ones(80), 7: np.ones(80)}}
    loaded = ItemCFProfiles.__new__(ItemCFProfiles)
    loaded.__setstate__(state)
    assert len(loaded) == 2 and loaded._vectors.held_bytes == 2 * 80 * 8
    assert loaded.carried(3, 80)[0].tolist() == [1.0] * 80


def test_user_cf_score_vectors_stay_within_their_budget():
    from stream.signals import UserNeighbourhood

    history, _ = _cf_world()
    neighbourhood = UserNeighbourhood(budget_mb=5 * 80 * 8 / 2**20)  # five users' vectors
    rng = np.random.default_rng(9)
    for _ in range(2000):
        neighbourhood.learn(int(rng.integers(60)), int(rng.integers(80)), 1.0)

    def recent_of(v):
        return history.positive_recent(v, 0.9)

    for user in range(60):
        neighbourhood.scores(user, 80, recent_of)
        cache = neighbourhood._score_cache
        assert len(cache) <= 5 and cache.held_bytes <= cache.budget_bytes
    # An evicted user's vector is summed again over their neighbours.
    assert 0 not in neighbourhood._score_cache
    others, sims = neighbourhood.neighbours(0)
    expected = np.zeros(80)
    for other, sim in zip(others.tolist(), sims.tolist(), strict=True):
        items, weights = recent_of(other)
        expected[items] += sim * weights
    assert expected.any()
    assert np.array_equal(neighbourhood.scores(0, 80, recent_of), expected)


def test_bounded_vectors_evict_the_least_recently_used():
    from stream.signals.bounded import BoundedVectors

    store = BoundedVectors(budget_mb=3 * 8 / 2**20)  # three 1-float vectors
    for user in (1, 2, 3):
        store.put(user, np.full(1, float(user)))
    store.get(1)  # 1 is now the most recently used: 2 goes first
    store.get(1)
    assert store.put(4, np.zeros(1)) == [2]
    store.get(3)
    assert store.put(5, np.zeros(1)) == [1]
    assert list(store) == [4, 3, 5] and store.held_bytes == 24
    store.pop(5)
    store.get(4)  # the newest was popped: 4 moves to the end
    assert list(store) == [3, 4] and store.held_bytes == 16
    assert store.get(9) is None and 9 not in store


def test_user_cf_score_vectors_from_a_pickle_of_a_plain_dict_load():
    from stream.signals import UserNeighbourhood

    neighbourhood = UserNeighbourhood()
    for user, item in [(0, 10), (1, 10), (0, 11), (1, 11)]:
        neighbourhood.learn(user, item, 1.0)
    state = {**neighbourhood.__dict__, "_score_cache": {0: np.ones(20)}}
    loaded = UserNeighbourhood.__new__(UserNeighbourhood)
    loaded.__setstate__(state)
    assert 0 in loaded._score_cache and loaded._score_cache.held_bytes == 20 * 8
    assert loaded.scores(0, 20, lambda v: (np.zeros(0, dtype=np.int64), np.zeros(0))).sum() == 20
