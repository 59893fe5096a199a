"""The multitask model's parts against plain references: bounded lists, popular lists,
the compiled pool and scoring, and the consistency of a pool's rows."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import numpy as np
import pytest

from stream.events import Event, Item
from stream.heads import HEAD_ORDER
from stream.kernels import learn_pool_pairs
from stream.multitask import FEATURE_NAMES, MultiTaskRecommender
from stream.multitask.kernels import bounded_add, top_list_update
from stream.multitask.layout import FEATURE, SOURCE
from stream.multitask.neighbours import ItemNeighbours
from stream.multitask.ranking_pass import score_rows, top_k

NO_EXPIRY = {"user_ttl_seconds": None, "item_ttl_seconds": None}


def test_a_bounded_list_is_exact_until_full_then_keeps_its_heaviest_half():
    ids = np.full((1, 8), -1, dtype=np.int32)
    weights = np.zeros((1, 8), dtype=np.float32)
    for target in range(8):
        bounded_add(ids, weights, 0, target, float(target + 1))
    bounded_add(ids, weights, 0, 3, 10.0)  # held: added to, nothing dropped
    assert sorted(ids[0].tolist()) == list(range(8)) and weights[0, 3] == 14.0
    bounded_add(ids, weights, 0, 99, 0.5)  # full: the lightest half goes, the newcomer stays
    held = dict(zip(ids[0].tolist(), weights[0].tolist(), strict=True))
    held.pop(-1)
    assert held == {3: 14.0, 7: 8.0, 6: 7.0, 5: 6.0, 99: 0.5}


def test_a_heavy_pair_survives_any_number_of_light_newcomers():
    ids = np.full((1, 16), -1, dtype=np.int32)
    weights = np.zeros((1, 16), dtype=np.float32)
    for n in range(5000):
        bounded_add(ids, weights, 0, 1 if n % 10 == 0 else 1000 + n, 1.0)
    assert 1 in ids[0] and weights[0][ids[0] == 1][0] == 500.0  # exact: never dropped


def test_neighbour_lists_match_brute_force_co_occurrence():
    """With lists larger than any item's neighbours, the lists are the exact counts."""
    rng = random.Random(3)
    neighbours = ItemNeighbours(size=64, alpha=0.5)
    history: dict[int, list[tuple[int, float]]] = defaultdict(list)
    pairs: dict[tuple[int, int], float] = defaultdict(float)
    totals: dict[int, float] = defaultdict(float)
    for _ in range(600):
        user, item, weight = rng.randrange(30), rng.randrange(20), rng.choice([0.5, 1.0, 3.0])
        window = history[user][-10:]
        neighbours.learn(
            item, weight, np.array([i for i, _ in window]), np.array([w for _, w in window])
        )
        totals[item] += weight
        for other, other_weight in window:
            if other != item:
                pairs[item, other] += min(weight, other_weight)
                pairs[other, item] += min(weight, other_weight)
        history[user].append((item, weight))
    for (a, b), value in pairs.items():
        expected = value / math.sqrt(totals[a] * totals[b])
        assert neighbours.similarity(a, b) == pytest.approx(expected, rel=1e-5)
    items, scores = neighbours.neighbours(0, 5)
    best = sorted(
        ((b, v / math.sqrt(totals[0] * totals[b])) for (a, b), v in pairs.items() if a == 0),
        key=lambda kv: (-kv[1], kv[0]),
    )[:5]
    assert items.tolist() == [b for b, _ in best]


def test_a_popular_list_holds_the_true_top_items():
    rng = np.random.default_rng(0)
    scaled = np.zeros(500)
    ids = np.full(20, -1, dtype=np.int64)
    for _ in range(20_000):  # Zipf-like engagement: scores only grow, as stored ones do
        item = min(int(rng.zipf(1.3)) - 1, 499)
        scaled[item] += rng.random()
        top_list_update(ids, scaled, item)
    assert set(ids.tolist()) == set(np.argsort(-scaled, kind="stable")[:20].tolist())


def _trained(**params) -> MultiTaskRecommender:
    model = MultiTaskRecommender(**{**NO_EXPIRY, **params})
    for n in range(120):
        model.add_item(Item(f"i{n}", {"genres": [f"g{n % 6}"], "title": f"Film {n}", "year": 2000}))
    rng = random.Random(1)
    kinds = ("view", "click", "add_to_cart", "purchase", "rating")
    for t in range(4000):
        user = rng.randrange(60)
        item = 6 * rng.randrange(20) + (user % 6 if rng.random() < 0.7 else rng.randrange(6))
        kind = rng.choice(kinds)
        value = float(rng.randint(1, 5)) if kind == "rating" else None
        model.learn_one(Event(f"u{user}", f"i{item}", kind, float(t), value))
    for genre in range(6):  # new releases: fresh items for the content source
        model.add_item(Item(f"new{genre}", {"genres": [f"g{genre}"], "title": "Fresh Film"}))
    return model


@pytest.fixture(scope="module")
def trained() -> MultiTaskRecommender:
    return _trained()


def test_pool_cf_scores_are_the_recency_weighted_item_cf_formula(trained):
    model = trained
    user = model._users.ids.get("u7")
    ctx = model._context("u7", user, model._clock)
    pool = model._pool(ctx)
    neighbours = model._neighbours
    for item, raw in zip(pool.items.tolist(), pool.raw[:, SOURCE["cf"]].tolist(), strict=True):
        expected = sum(
            w * neighbours.similarity(int(h), item)
            for h, w in zip(ctx.history.tolist(), ctx.history_weights.tolist(), strict=True)
        )
        assert raw == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert (pool.raw[:, SOURCE["cf"]] > 0).any()


def test_pools_leave_out_seen_and_withdrawn_items_and_stay_bounded(trained):
    model = trained
    model.withdraw_item("i5")
    withdrawn = model._catalog.ids.get("i5")
    for n in range(60):
        user = model._users.ids.get(f"u{n}")
        pool = model._pool(model._context(f"u{n}", user, model._clock))
        assert withdrawn not in pool.items
        assert not set(pool.items.tolist()) & model._users.seen[user]
        assert pool.items.shape[0] <= model.pool_size + model.per_source["fresh"]
        assert np.unique(pool.items).shape[0] == pool.items.shape[0]
    model.add_item(Item("i5", {"genres": ["g5"], "title": "Film 5"}))
    assert not model._catalog.withdrawn[withdrawn]


def test_an_items_row_alone_equals_its_row_in_the_pool(trained):
    """The row learned for an engaged item (maybe outside the pool) is scaled as the pool was."""
    model = trained
    user = model._users.ids.get("u3")
    ctx = model._context("u3", user, model._clock)
    pool = model._pool(ctx)
    for position in (0, pool.items.shape[0] // 2, pool.items.shape[0] - 1):
        item = int(pool.items[position])
        alone = model._pool(ctx, extra=item, scales=pool.scales)
        assert alone.items.tolist() == [item]
        assert np.allclose(alone.features[0], pool.features[position], rtol=1e-12, atol=1e-12)


def test_compiled_scores_equal_the_heads_predictions(trained):
    model = trained
    user = model._users.ids.get("u11")
    pool = model._pool(model._context("u11", user, model._clock))
    weights, intercepts, known = model._heads.scoring_arrays()
    values = model._value_weights(known)
    predictions, scores = score_rows(
        pool.features, weights, intercepts, known, True, model._heads.rating_offset, values
    )
    reference = model._heads.predict(pool.features)
    assert {"click", "add_to_cart", "purchase", "like", "rating"} <= set(reference)
    for column, task in enumerate(HEAD_ORDER):
        if task in reference:
            assert np.allclose(predictions[:, column], reference[task], rtol=1e-9), task
    value = 1.0 + sum(values[c] * predictions[:, c] for c in range(len(HEAD_ORDER)))
    assert np.allclose(scores, reference["relevance_logit"] + np.log(value), rtol=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_top_k_sorts_by_score_then_blend_then_lower_row(seed):
    rng = np.random.default_rng(seed)
    n = 40
    scores = rng.integers(0, 4, n).astype(float)  # many ties
    blend = rng.integers(0, 3, n).astype(float)
    items = rng.permutation(1000)[:n]
    skip = rng.random(n) < 0.2
    allowed = np.flatnonzero(~skip)
    expected = allowed[np.lexsort((items[allowed], -blend[allowed], -scores[allowed]))][:10]
    assert top_k(scores, blend, items, 10, skip).tolist() == expected.tolist()


def test_every_feature_column_is_used_by_some_row(trained):
    model = trained
    used = np.zeros(len(FEATURE_NAMES), dtype=bool)
    for n in range(60):
        user = model._users.ids.get(f"u{n}")
        used |= (model._pool(model._context(f"u{n}", user, model._clock)).features != 0).any(0)
    unused = [name for name, on in zip(FEATURE_NAMES, used, strict=True) if not on]
    # No segments (profiles) and no prices in this catalog.
    assert unused == ["segment_popularity", "item_log_price"]
    assert FEATURE["blend"] < len(FEATURE_NAMES)


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
