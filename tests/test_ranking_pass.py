"""The compiled ranking pass against the numpy pipeline it replaced.

``rank_pool`` selects candidates, builds their features, scores them with the
heads and picks the top k in one compiled call; the reference below does the
same steps the way the multitask model did them in numpy (with ties broken
by the lower item row, the order the compiled selection promises).
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from stream.datasets import load_dataset
from stream.events import Item
from stream.kernels import learn_pool_pairs
from stream.multitask import FEATURE_NAMES, MultiTaskRecommender
from stream.ranking_pass import N_FEATURES, blocked_items, top_indices
from tests.test_kernels import CLOSE, reference_features


def reference_top(values, allowed, take):
    """Indices of the best ``take`` allowed values: value descending, then index ascending."""
    indices = np.flatnonzero(allowed)
    order = np.lexsort((indices, -values[indices]))
    return indices[order][:take]


@pytest.mark.parametrize("seed", range(20))
def test_top_indices_is_a_sort_with_ties_to_the_lower_index(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    # Few distinct values, so most comparisons are ties.
    values = rng.integers(-3, 4, n).astype(float)
    values[rng.random(n) < 0.05] = -np.inf
    allowed = rng.random(n) < 0.8
    for take in (0, 1, 7, 100, n + 5):
        got = top_indices(values, allowed, take)
        assert got.tolist() == reference_top(values, allowed, take).tolist(), (seed, take)


def reference_ranking(model, user, k):
    """Candidates, features, predictions, scores and top ``k`` the numpy way."""
    n_items = model._items.capacity
    blend = model._vectors(user, n_items)[4]
    blocked = model._blocked(user, n_items)
    best = reference_top(blend, ~blocked, model.n_candidates)
    cold = model._fresh_pool(n_items)
    cold = cold[~blocked[cold]]
    fresh = cold[:0]
    if cold.size:
        affinity = model._taste.affinity(user, cold)[:, 0]
        picked = reference_top(affinity, np.ones(cold.size, dtype=bool), model.n_fresh_candidates)
        picked = picked[affinity[picked] > 0]
        fresh = cold[picked][~np.isin(cold[picked], best)]
    candidates = np.concatenate([best, fresh])
    features = reference_features(model, user, candidates, n_items, None)
    predictions = model._heads.predict(features)
    score = model._final_score(predictions)
    chosen = reference_top(score, np.ones(score.size, dtype=bool), k)
    return candidates, fresh.size, features, predictions, score, chosen


def test_rank_pool_matches_the_numpy_pipeline(trained):
    model, users = trained
    n_items = model._items.capacity
    with_fresh = 0
    for user in users:
        user_id = model._users.external(user)
        entries = model._recommend_user(user_id, 10, n_items, with_reasons=False)
        candidates, features = model._last_pools[user]
        ref_candidates, n_fresh, ref_features, predictions, score, chosen = reference_ranking(
            model, user, 10
        )
        with_fresh += n_fresh > 0
        assert candidates.tolist() == ref_candidates.tolist(), f"user row {user}"
        assert np.allclose(features, ref_features, **CLOSE)
        assert [e.item_id for e in entries] == [
            model._items.external(int(candidates[p])) for p in chosen
        ]
        for entry, position in zip(entries, chosen, strict=True):
            assert math.isclose(entry.score, score[position], rel_tol=1e-9)
            for task, value in entry.scores.items():
                assert math.isclose(value, predictions[task][position], rel_tol=1e-9), task
        assert set(entries[0].scores) == set(predictions)  # every head that has learned
        assert {"click", "purchase", "like", "rating"} <= set(predictions)
    assert with_fresh > 0  # the fresh-item source was exercised


def reference_pairs(weights, features, picked, n_pairs, draws, learning_rate):
    """learn_pool_pairs in plain Python: partial Fisher-Yates over the other rows."""
    others = [r for r in range(features.shape[0]) if r != picked]
    take = min(n_pairs, len(others))
    for step in range(take):
        remaining = len(others) - step
        chosen = step + min(int(draws[step] * remaining), remaining - 1)
        others[step], others[chosen] = others[chosen], others[step]
        difference = features[picked] - features[others[step]]
        margin = float(difference @ weights)
        weights += learning_rate * difference / (1.0 + math.exp(min(margin, 30.0)))
    return take, others[:take]


@pytest.mark.parametrize("rows", [1, 2, 5, 40])
def test_learn_pool_pairs_steps_on_distinct_passed_over_rows(rows):
    rng = np.random.default_rng(rows)
    features = rng.normal(size=(rows, len(FEATURE_NAMES)))
    weights = rng.normal(size=len(FEATURE_NAMES))
    draws = rng.random(4)
    before = weights.copy()
    expected = weights.copy()
    take, others = reference_pairs(expected, features, rows // 2, 4, draws, 0.05)
    assert learn_pool_pairs(weights, features, rows // 2, 4, draws, 0.05) == take
    assert np.allclose(weights, expected, rtol=1e-12, atol=1e-12)
    assert take == min(4, rows - 1)
    assert len(set(others)) == take and rows // 2 not in others
    assert np.array_equal(weights, before) == (take == 0)  # it learned iff it had pairs


def test_blocked_items_joins_withdrawn_seen_and_outside():
    withdrawn = np.array([True, False, False, False, False, False])
    seen = np.array([2, 9])  # 9: an item beyond the ranked ones is ignored
    outside = np.array([False, False, False, False, True, False])
    assert blocked_items(6, withdrawn, seen, outside).tolist() == [1, 0, 1, 0, 1, 0]
    assert blocked_items(6, withdrawn[:3], seen, outside[:0]).tolist() == [1, 0, 1, 0, 0, 0]


def test_an_event_row_taken_from_the_ranking_equals_one_built_afresh(trained):
    model, users = trained
    n_items = model._items.capacity
    for user in users[:8]:
        user_id = model._users.external(user)
        model._recommend_user(user_id, 10, n_items, with_reasons=False)
        candidates, _ = model._last_pools[user]
        outside = np.setdiff1d(np.arange(n_items), candidates)
        assert outside.size
        later = model._clock + 3600.0  # the gap columns must follow the event's time
        # Candidates' rows come from the pool; another item's is built from
        # the ranking's signals and inputs.
        for item in (int(candidates[3]), int(candidates[-1]), int(outside[0]), int(outside[-1])):
            model._last_event_row = None
            row = model._event_row(user, item, later, user_id)  # from the ranking
            afresh = model._features(
                user, np.array([item]), n_items, current=False, now=later, user_id=user_id
            )[0]
            assert np.array_equal(row, afresh), (user, item)


def test_the_compiled_rows_hold_every_feature():
    assert N_FEATURES == len(FEATURE_NAMES)


def test_heads_learned_over_another_feature_layout_are_refused_on_load(trained):
    model, _ = trained
    state = pickle.dumps(model)
    assert pickle.loads(state)._heads.relevance.names == FEATURE_NAMES  # loads as it is
    old_layout = pickle.loads(state)
    old_layout._heads.relevance.names = FEATURE_NAMES[:-1]  # as before mf_x_fresh existed
    with pytest.raises(ValueError, match="20 features.*21"):
        pickle.loads(pickle.dumps(old_layout))


def test_a_catalog_update_is_seen_by_the_next_event_row(trained):
    model = pickle.loads(pickle.dumps(trained[0]))
    model.cold_start_transfer = False  # no prior moves, so the update alone must tell
    user = trained[1][0]
    user_id = model._users.external(user)
    n_items = model._items.capacity
    model._recommend_user(user_id, 10, n_items, with_reasons=False)
    item = int(model._last_pools[user][0][0])
    external = model._items.external(item)
    version = model._state_version
    model.add_item(Item(external, {"genres": ["Brand new genre"], "year": 1950, "price": 99.0}))
    assert model._state_version == version
    row = model._event_row(user, item, model._clock, user_id)
    afresh = model._features(
        user, np.array([item]), n_items, current=False, now=model._clock, user_id=user_id
    )[0]
    assert np.array_equal(row, afresh)


def test_mmr_never_picks_an_excluded_candidate(trained):
    model = pickle.loads(pickle.dumps(trained[0]))
    model.diversity = 0.3
    candidates = np.arange(40)
    score = np.linspace(1.0, 0.0, 40)  # the excluded ones score best
    picks = model._diversify(candidates, score, 10, exclude=candidates[:3])
    assert len(set(picks)) == 10
    assert min(picks) >= 3
    assert picks[0] == 3  # nothing chosen yet: the best allowed score goes first


def test_diversity_with_exploration_gives_k_distinct_items():
    data = load_dataset("synthetic")
    model = MultiTaskRecommender(diversity=0.3, exploration=0.3)
    for item in data.items:
        model.add_item(item)
    for event in data.events[:3000]:
        model.learn_one(event)
    for user_id in sorted({e.user_id for e in data.events[:3000]})[:30]:
        entries = model.recommend([user_id], 10)[0]
        items = [entry.item_id for entry in entries]
        assert len(items) == 10 and len(set(items)) == 10, items
        assert any("explore" in entry.scores for entry in entries)
