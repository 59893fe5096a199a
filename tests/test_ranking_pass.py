"""The compiled ranking pass against the numpy pipeline it replaced.

``rank_pool`` selects candidates, builds their features, scores them with the
heads and picks the top k in one compiled call; the reference below does the
same steps the way the multitask model did them in numpy (with ties broken
by the lower item row, the order the compiled selection promises).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.kernels import learn_pool_pairs
from stream.multitask import FEATURE_NAMES
from stream.ranking_pass import blocked_items, top_indices
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


def test_an_event_row_taken_from_the_pool_equals_one_built_afresh(trained):
    model, users = trained
    n_items = model._items.capacity
    for user in users[:8]:
        user_id = model._users.external(user)
        model._recommend_user(user_id, 10, n_items, with_reasons=False)
        candidates, _ = model._last_pools[user]
        later = model._clock + 3600.0  # the gap columns must follow the event's time
        for item in (int(candidates[3]), int(candidates[-1])):
            model._last_event_row = None
            row = model._event_row(user, item, later, user_id)  # from the pool
            afresh = model._features(
                user, np.array([item]), n_items, current=False, now=later, user_id=user_id
            )[0]
            assert np.array_equal(row, afresh), (user, item)
