"""The anchor models do what their names say (their contract: tests/test_model_contract.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from stream.baselines import (
    DecayedPopularityRecommender,
    GenrePopularityRecommender,
    ItemCFRecommender,
    PopularityRecommender,
    RecencyItemCFRecommender,
    RiverBiasedMF,
    TopCounts,
)
from stream.checks import background, clicks
from stream.events import Event, Item
from stream.registry import BASELINES, MODELS, build_model

# The shared contract (stream.checks) runs against every anchor in
# tests/test_model_contract.py; item-CF passes its planted preference there,
# the popularity anchors and MF skip it (their ``_unit_test_skips``).


def test_registry_keeps_baselines_apart_and_builds_them_by_name():
    assert not set(BASELINES) & set(MODELS)
    for name, cls in BASELINES.items():
        model = build_model(name)
        assert type(model) is cls and model.name == name
    assert build_model("itemcf").recency_decay == 1.0
    assert build_model("itemcf-recency").recency_decay == 0.9
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")


def test_scoring_unknown_ids_leaves_river_tables_alone():
    model = RiverBiasedMF()
    model.learn_many(background(n_events=300))
    before = model.river_state_size()
    model.recommend(["stranger", "bg1"], 10)
    model.predict_tasks(Event("stranger", "no-such-item", "rating", 1e6))
    model.predict_tasks(Event("bg1", "no-such-item", "rating", 1e6))
    assert model.river_state_size() == before
    assert (model.n_users, model.n_items) == (40, 60)


def test_river_learns_ratings_and_strangers_get_the_popularity_list():
    model = RiverBiasedMF()
    popularity = PopularityRecommender()
    rng = random.Random(4)
    events = []
    for n in range(3000):
        user, item = f"u{rng.randrange(30)}", f"i{rng.randrange(20)}"
        # Even items are loved, odd ones hated: the biases must learn it.
        stars = 5.0 if int(item[1:]) % 2 == 0 else 1.0
        events.append(Event(user, item, "rating", float(n), stars))
    model.learn_many(events)
    popularity.learn_many(events)
    assert model.predict_tasks(Event("u1", "i2", "rating", 0))["rating"] > 3.5
    assert model.predict_tasks(Event("u1", "i3", "rating", 0))["rating"] < 2.5
    stranger = [e.item_id for e in model.recommend(["stranger"], 5)[0]]
    assert stranger == [e.item_id for e in popularity.recommend(["stranger"], 5)[0]]


def test_river_ranks_a_known_user_with_rivers_rank():
    model = RiverBiasedMF()
    events = [Event(f"u{n % 10}", f"i{n % 7}", "rating", float(n), 3.0) for n in range(200)]
    events += [Event("probe", "i0", "rating", 300.0, 4.0)]
    model.learn_many(events)
    expected = model._river.rank("probe", {f"i{n}" for n in range(1, 7)})[:3]
    assert [e.item_id for e in model.recommend(["probe"], 3)[0]] == expected


def test_popularity_counts_every_positive_event_once():
    model = PopularityRecommender()
    pairs = [("a", "x")] * 1 + [("b", "y"), ("c", "y")] + [(f"u{n}", "z") for n in range(3)]
    model.learn_many(clicks(pairs))
    model.learn_one(Event("d", "x", "dislike", 100.0))  # a dislike counts for nothing
    assert [e.item_id for e in model.recommend(["new"], 3)[0]] == ["z", "y", "x"]
    assert [e.item_id for e in model.recommend(["b"], 3)[0]] == ["z", "x"]  # y was seen


def test_decayed_popularity_prefers_what_is_popular_now():
    day = 86400.0
    model = DecayedPopularityRecommender(half_life=day)
    old = [Event(f"o{n}", "old", "click", n * 1.0) for n in range(5)]
    new = [Event(f"n{n}", "new", "click", 10 * day + n) for n in range(3)]
    model.learn_many(old + new)
    assert [e.item_id for e in model.recommend(["someone"], 2)[0]] == ["new", "old"]
    alltime = PopularityRecommender()
    alltime.learn_many(old + new)
    assert [e.item_id for e in alltime.recommend(["someone"], 2)[0]] == ["old", "new"]


def _two_neighbourhoods():
    """Fans tie ``a`` to ``x`` and ``b`` to ``y`` equally; probe saw ``a`` then ``b``."""
    pairs = []
    for n in range(10):
        pairs += [(f"fa{n}", "a"), (f"fa{n}", "x"), (f"fb{n}", "b"), (f"fb{n}", "y")]
    pairs += [("probe", "a"), ("probe", "b")]
    return clicks(pairs)


def test_plain_item_cf_weighs_all_history_alike():
    model = ItemCFRecommender()
    model.learn_many(_two_neighbourhoods())
    top = model.recommend(["probe"], 2)[0]
    assert {e.item_id for e in top} == {"x", "y"}
    assert top[0].score == pytest.approx(top[1].score)


def test_recency_item_cf_puts_the_newest_history_first():
    model = RecencyItemCFRecommender()
    model.learn_many(_two_neighbourhoods())
    top = model.recommend(["probe"], 2)[0]
    assert [e.item_id for e in top] == ["y", "x"]  # b is newer than a
    assert top[0].reason == "similar to b"


def test_item_cf_fills_the_list_with_popular_items():
    model = ItemCFRecommender()
    pairs = [("p", "a"), ("p", "b")] + [(f"u{n}", "pop") for n in range(5)] + [("q", "a")]
    model.learn_many(clicks(pairs))
    ids = [e.item_id for e in model.recommend(["q"], 3)[0]]
    assert ids == ["b", "pop"]  # b co-occurs with a; pop fills the rest


# ----------------------------------------------------------------------------- genre popularity


def _genre_catalog(model, n_items=40, n_genres=4):
    for n in range(n_items):
        model.add_item(Item(f"i{n}", {"genres": [f"g{n % n_genres}", "extra"]}))


def test_genre_popularity_ranks_the_latest_genres_favourite_first():
    model = GenrePopularityRecommender()
    _genre_catalog(model)
    # i0 (genre g0) is the most popular overall; in g1, i5 beats i1.
    pairs = [(f"a{n}", "i0") for n in range(20)]
    pairs += [(f"b{n}", "i5") for n in range(6)] + [(f"c{n}", "i1") for n in range(3)]
    pairs += [("probe", "i4"), ("probe", "i9")]  # g0, then g1: the latest is g1
    model.learn_many(clicks(pairs))
    top = model.recommend(["probe"], 4)[0]
    assert [e.item_id for e in top[:2]] == ["i5", "i1"]
    assert top[0].reason == "popular in g1"
    assert top[2].item_id == "i0" and top[2].reason == "popular"  # then the global fill
    assert top[0].score > top[1].score > top[2].score
    model.learn_one(Event("probe", "i8", "click", 100.0))  # back to g0
    assert model.recommend(["probe"], 1)[0][0].item_id == "i0"
    model.learn_one(Event("probe", "i1", "dislike", 101.0))  # a dislike does not move it
    assert model.recommend(["probe"], 1)[0][0].item_id == "i0"
    # A stranger, and an item without genres, get the global list.
    assert [e.item_id for e in model.recommend(["stranger"], 2)[0]] == ["i0", "i5"]
    model.learn_one(Event("probe", "no-genre", "click", 102.0))
    assert model.recommend(["probe"], 1)[0][0].reason == "popular"


def test_genre_popularity_files_an_item_counted_before_its_catalog_record():
    model = GenrePopularityRecommender()
    model.learn_many(clicks([(f"u{n}", "late") for n in range(5)] + [("probe", "x")]))
    model.add_item(Item("x", {"genres": ["g9"]}))
    model.add_item(Item("late", {"genres": ["g9"]}))
    model.learn_one(Event("probe", "x", "click", 50.0))
    assert model.recommend(["probe"], 1)[0][0].reason == "popular in g9"


def test_genre_popularity_reads_bounded_top_lists_not_the_catalog(monkeypatch):
    import stream.baselines as baselines

    model = GenrePopularityRecommender(top_n=20)
    _genre_catalog(model, n_items=3000, n_genres=30)
    rng = random.Random(2)
    model.learn_many(
        clicks([(f"u{rng.randrange(500)}", f"i{rng.randrange(3000)}") for _ in range(20_000)])
    )
    state = model.state_size()
    assert state["genres"] == 30 and state["longest_top_list"] == 20
    assert state["global_top_list"] == 20 and state["items"] > 2900

    def no_scan(*args, **kwargs):
        raise AssertionError("a full pass over the catalog")

    monkeypatch.setattr(baselines, "_top_k", no_scan)
    monkeypatch.setattr(GenrePopularityRecommender, "_scan", no_scan)
    for user in ["u1", "u7", "u499", "stranger"]:
        assert len(model.recommend([user], 10)[0]) == 10
        assert len(model.recommend_ids(user, 10)) == 10


def test_genre_popularity_scans_only_when_the_top_lists_run_out():
    model = GenrePopularityRecommender(top_n=2)
    _genre_catalog(model, n_items=8, n_genres=2)
    model.learn_many(clicks([(f"u{n}", f"i{n % 8}") for n in range(40)] + [("p", "i0")]))
    model.learn_many(clicks([("p", "i2"), ("p", "i4"), ("p", "i1")], start=100.0))
    model.learn_one(Event("p", "i6", "click", 200.0))  # g0's four items all seen
    ids = [e.item_id for e in model.recommend(["p"], 4)[0]]
    assert ids == ["i3", "i5", "i7"]  # the rest of the catalog, found by the scan


def test_top_counts_is_the_exact_top_of_growing_counts():
    rng = random.Random(5)
    counts = np.zeros(50)
    top = TopCounts(7)
    for _ in range(3000):
        row = min(int(rng.paretovariate(1.2)) - 1, 49)
        counts[row] += 1
        top.offer(row, counts)
        offered = np.flatnonzero(counts)
        expected = sorted(offered.tolist(), key=lambda r: (-counts[r], r))[:7]
        assert top.rows == expected
