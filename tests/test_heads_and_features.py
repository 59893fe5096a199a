"""Task heads, content features and the multi-task model's own behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from stream.evaluation.online import RollingAUC
from stream.events import Event, Item
from stream.features import ItemContent, UserTaste
from stream.heads import PairwiseRanker, TaskHeads
from stream.multitask import MultiTaskRecommender
from stream.tasks import task_labels

NAMES = ["signal", "noise"]


def funnel_stream(rng, n=3000):
    """Rows whose first feature drives how deep the funnel goes."""
    for _ in range(n):
        signal, noise = rng.random(), rng.random()
        depth = int(signal * 4 + rng.normal(0, 0.3))
        yield (
            np.array([signal, noise]),
            ("view", "click", "add_to_cart", "purchase")[min(3, max(0, depth))],
        )


@pytest.mark.parametrize("mode", ["chain", "single"])
def test_funnel_heads_learn_the_planted_signal(mode):
    heads = TaskHeads(NAMES, mode=mode, learning_rate=0.1)
    for row, event_type in funnel_stream(np.random.default_rng(0)):
        heads.learn_labels(row, task_labels(Event("u", "i", event_type, 0.0)))
    low, high = heads.predict(np.array([[0.1, 0.5], [0.9, 0.5]])), None
    high = {task: values[1] for task, values in low.items()}
    low = {task: values[0] for task, values in low.items()}
    for task in ("click", "add_to_cart", "purchase"):
        assert high[task] > low[task], task


def test_chain_probabilities_respect_the_funnel():
    heads = TaskHeads(NAMES, mode="chain")
    for row, event_type in funnel_stream(np.random.default_rng(1), n=500):
        heads.learn_labels(row, task_labels(Event("u", "i", event_type, 0.0)))
    p = heads.predict(np.random.default_rng(2).random((50, 2)))
    assert (p["purchase"] <= p["add_to_cart"] + 1e-12).all()
    assert (p["add_to_cart"] <= p["click"] + 1e-12).all()


@pytest.mark.parametrize("mode", ["chain", "single"])
def test_predict_one_agrees_with_the_matrix_path(mode):
    heads = TaskHeads(NAMES, mode=mode, learning_rate=0.1)
    for row, event_type in funnel_stream(np.random.default_rng(3), n=300):
        heads.learn_labels(row, task_labels(Event("u", "i", event_type, 0.0)))
        heads.learn_labels(row, {"like": int(row[0] > 0.5)})
        heads.learn_rating(row, 1.0 + 4.0 * row[0])
    row = np.array([0.7, 0.2])
    matrix = heads.predict(row[None, :])
    matrix.pop("relevance_logit")
    one = heads.predict_one(row)
    assert set(one) == set(matrix)
    for task, value in one.items():
        assert value == pytest.approx(float(matrix[task][0]), abs=1e-12), task


def test_heads_that_never_learned_say_nothing():
    heads = TaskHeads(NAMES)
    assert set(heads.predict(np.zeros((1, 2)))) == {"relevance", "relevance_logit"}
    heads.learn_labels(np.zeros(2), {"like": 1})
    heads.learn_rating(np.zeros(2), 5.0)
    assert {"like", "rating"} <= set(heads.predict(np.zeros((1, 2))))
    with pytest.raises(ValueError, match="mode"):
        TaskHeads(NAMES, mode="both")


def test_pairwise_ranker_learns_which_feature_wins():
    ranker = PairwiseRanker(NAMES, learning_rate=0.1)
    rng = np.random.default_rng(3)
    for _ in range(500):
        a, b = rng.random(2), rng.random(2)
        picked, passed = (a, b) if a[1] > b[1] else (b, a)  # the second feature decides
        ranker.learn(picked - passed)
    assert ranker.weights[1] > abs(ranker.weights[0])


def test_content_vectors_stay_aligned_when_genres_appear():
    content = ItemContent(title_buckets=8)
    taste = UserTaste(content)
    content.set(0, {"genres": ["Drama"], "title": "Heat"})
    taste.learn(7, 0, 1.0)
    for n in range(20):  # new genres widen the vector space
        content.set(n + 1, {"genres": [f"g{n}"], "title": f"t{n}"})
    content.set(30, {"genres": ["Drama"], "title": "Heat again"})
    affinity = taste.affinity(7, np.array([30, 5]))
    assert affinity[0, 0] > 0.5 > affinity[1, 0]
    assert np.allclose(np.linalg.norm(content.vectors(np.array([0, 30])), axis=1), 1.0)


def test_rolling_auc_matches_brute_force():
    rng = np.random.default_rng(4)
    auc = RollingAUC(window=300)
    scores, labels = rng.random(500).round(2), rng.integers(0, 2, 500)
    for score, label in zip(scores, labels, strict=True):
        auc.add(float(score), int(label))
    s, y = scores[-300:], labels[-300:]
    pos, neg = s[y == 1], s[y == 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert auc.value() == pytest.approx(brute)


GENRES = ["Comedy", "Horror", "Drama", "SciFi", "Western", "Noir", "Musical", "War"]


def _catalog_model(**params):
    """80 items in 8 genres; users stick to one genre and have seen only part of it."""
    model = MultiTaskRecommender(**params)
    for n in range(80):
        model.add_item(Item(f"i{n}", {"genres": [GENRES[n % 8]], "title": f"{GENRES[n % 8]} {n}"}))
    rng = np.random.default_rng(5)
    for t in range(1200):
        user = int(rng.integers(40))
        genre = user % 8 if rng.random() < 0.8 else int(rng.integers(8))
        item = 8 * int(rng.integers(10)) + genre
        model.learn_one(Event(f"u{user}", f"i{item}", "click", float(t)))
    return model


def _list_diversity(model, items):
    """Share of a list's pairs of items whose genres differ."""
    genres = model._catalog.genres[[model._catalog.ids.get(i) for i in items], 0]
    n = len(items)
    same = (genres[:, None] == genres[None, :]).sum() - n
    return 1 - same / (n * (n - 1))


def test_diversity_knob_makes_lists_more_diverse():
    users = [f"u{n}" for n in range(40)]

    def mean_diversity(model):
        return np.mean(
            [_list_diversity(model, [e.item_id for e in r]) for r in model.recommend(users, 5)]
        )

    assert mean_diversity(_catalog_model(diversity=0.8)) > mean_diversity(_catalog_model()) + 0.1


def test_fresh_items_enter_the_pool_by_content_and_say_why():
    # A pool smaller than the catalog, so the new item can only come in by content.
    model = _catalog_model(pool_size=10)
    model.add_item(Item("brand-new", {"genres": ["Comedy"], "title": "Comedy fresh"}))
    new_row = model._catalog.ids.get("brand-new")
    fans = [f"u{n}" for n in range(0, 40, 8)]  # users whose genre is Comedy
    model.recommend(fans, 10)
    pools = [model._pools[model._users.ids.get(u)].items for u in fans]
    assert all(new_row in pool for pool in pools)
    full_lists = model.recommend(fans, 100)
    reasons = [e.reason for r in full_lists for e in r if e.item_id == "brand-new"]
    assert reasons and set(reasons) == {"new in Comedy"}


def test_segment_popularity_follows_the_users_segment():
    from stream.segments import SegmentPopularity

    segments = SegmentPopularity()
    segments.set_profile("ann", {"age": 23, "gender": "F"})
    segments.set_profile("bea", {"age": 27, "gender": "F"})
    segments.set_profile("carl", {"age": 61, "gender": "M"})
    segments.learn("ann", 3, 1.0, timestamp=0.0)
    segments.learn("carl", 5, 1.0, timestamp=0.0)
    assert segments.scores("bea", np.arange(6)).argmax() == 3  # what her segment likes, not carl's
    assert segments.scores("carl", np.arange(6)).argmax() == 5
    segments.forget("bea")
    assert not segments.scores("bea", np.arange(6)).any()
    assert not segments.scores("stranger", np.arange(6)).any()
