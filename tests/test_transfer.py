"""Knowledge transfer: cold items from content, cold users from segments, one domain for another;
exploration slots for new items; every reason names its actual source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.datasets.synthetic import generate_synthetic
from stream.evaluation import prequential
from stream.events import Event, Item, UserProfile
from stream.multitask import MultiTaskRecommender

NO_EXPIRY = {"user_ttl_seconds": None, "item_ttl_seconds": None}


def _two_genre_world(model: MultiTaskRecommender, n_events: int = 2400) -> None:
    """Westerns and musicals; even users watch only westerns, odd users only musicals."""
    for n in range(20):
        model.add_item(Item(f"w{n}", {"title": f"Gun Canyon {n}", "genres": ["Western"]}))
        model.add_item(Item(f"m{n}", {"title": f"Song Dance {n}", "genres": ["Musical"]}))
    rng = np.random.default_rng(0)
    for t in range(n_events):
        user = int(rng.integers(40))
        prefix = "w" if user % 2 == 0 else "m"
        model.learn_one(Event(f"u{user}", f"{prefix}{rng.integers(20)}", "click", float(t)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _placement(transfer: bool) -> tuple[float, float, float]:
    model = MultiTaskRecommender(
        cold_start_transfer=transfer, transfer_refit_every=200, **NO_EXPIRY
    )
    _two_genre_world(model)
    model.add_item(Item("new-western", {"title": "Gun Ridge", "genres": ["Western"]}))
    model.add_item(Item("new-musical", {"title": "Song Night", "genres": ["Musical"]}))
    items = model._catalog.ids
    vectors = model._mf.item_vectors(items.capacity)
    rows = {name: items.get(name) for name in ("new-western", "new-musical")}
    westerns = vectors[[items.get(f"w{n}") for n in range(20)]].mean(axis=0)
    musicals = vectors[[items.get(f"m{n}") for n in range(20)]].mean(axis=0)
    new = vectors[rows["new-western"]]
    scores = model._mf.score(np.array([model._users.ids.get("u0")]), items.capacity)[0]
    return (
        _cosine(new, westerns),
        _cosine(new, musicals),
        float(scores[rows["new-western"]] - scores[rows["new-musical"]]),
    )


def test_a_new_item_starts_near_the_warm_items_that_share_its_content() -> None:
    to_westerns, to_musicals, margin = _placement(transfer=True)
    assert to_westerns > 0.8 and to_musicals < 0.2
    assert margin > 0  # a western fan's MF score prefers the new western
    without = _placement(transfer=False)
    assert abs(without[0]) < 0.5  # without transfer it is only its random start


def test_a_new_user_with_a_profile_starts_from_the_segment() -> None:
    model = MultiTaskRecommender(transfer_refit_every=200, **NO_EXPIRY)
    for n in range(40):  # even users are young women, odd users older men
        model.add_profile(
            UserProfile(f"u{n}", {"age": 22 if n % 2 == 0 else 55, "gender": "MF"[n % 2 == 0]})
        )
    _two_genre_world(model)
    model.add_profile(UserProfile("newcomer", {"age": 24, "gender": "F"}))
    top = model.recommend(["newcomer"], 10)[0]
    assert sum(e.item_id.startswith("w") for e in top) >= 8  # what her segment watches
    assert "liked by people like you" in {e.reason for e in top}
    assert {e.reason for e in top} <= {"liked by people like you", "popular now"}
    model.learn_one(Event("newcomer", "w3", "click", 1e4))
    row = model._users.ids.get("newcomer")
    segment_mean = model._priors.segment_vectors.mean("F:20s")
    assert segment_mean is not None
    assert _cosine(model._mf.user_vector(row), segment_mean) > 0.5


def _run(domain_transfer: bool) -> dict:
    data = generate_synthetic(n_users=400, n_items=200, n_events=12_000, n_domains=2, seed=1)
    model = MultiTaskRecommender(domain_transfer=domain_transfer)
    result = prequential(model, data.events, catalog=data.items, profiles=data.profiles)
    return result.summary()


def test_history_in_one_domain_lifts_the_first_lists_in_another() -> None:
    with_source, without = _run(True), _run(False)
    assert with_source["slice_events"]["new_in_domain"] > 500
    assert with_source["hr@10_new_in_domain"] > without["hr@10_new_in_domain"] + 0.03


def test_a_list_asked_for_a_domain_holds_only_that_domain_and_says_where_from() -> None:
    model = MultiTaskRecommender(**NO_EXPIRY)
    for n in range(10):
        model.add_item(Item(f"film{n}", {"title": f"Film {n}", "domain": "movies"}))
        model.add_item(Item(f"book{n}", {"title": f"Book {n}", "domain": "books"}))
    t = 0.0
    for n in range(30):  # readers of book0 watched film0 first
        model.learn_one(Event(f"fan{n}", "film0", "click", t, domain="movies"))
        model.learn_one(Event(f"fan{n}", "book0", "click", t + 1, domain="books"))
        t += 2
    model.learn_one(Event("probe", "film0", "click", t, domain="movies"))
    books = model.recommend(["probe"], 5, domain="books")[0]
    assert all(e.item_id.startswith("book") for e in books)
    assert books[0].item_id == "book0"
    assert books[0].reason == "similar to Film 0 you clicked in movies"
    assert all(
        e.item_id.startswith("film") for e in model.recommend(["probe"], 5, domain="movies")[0]
    )
    # Kept apart, the probe is a stranger among books: popularity is all it gets.
    apart = MultiTaskRecommender(domain_transfer=False, **NO_EXPIRY)
    apart.learn_many(
        [Event(f"fan{n}", "film0", "click", float(n), domain="movies") for n in range(30)]
        + [Event("probe", "film0", "click", 40.0, domain="movies")]
    )
    apart.learn_one(Event("reader", "book1", "click", 41.0, domain="books"))
    assert {e.reason for e in apart.recommend(["probe"], 5, domain="books")[0]} == {"popular now"}


def _exploring(seed: int, share: float) -> tuple[MultiTaskRecommender, list]:
    model = MultiTaskRecommender(exploration=share, seed=seed, **NO_EXPIRY)
    _two_genre_world(model, n_events=800)
    for n in range(30):  # new releases nobody has engaged with yet
        model.add_item(Item(f"new{n}", {"title": f"Fresh {n}", "genres": ["Drama"]}))
    lists = [model.recommend([f"u{n % 40}"], 10)[0] for n in range(300)]
    return model, lists


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_exploration_share_is_bounded_and_seeded(share: float) -> None:
    model, lists = _exploring(seed=5, share=share)
    explored = [[e for e in lst if "explore" in e.scores] for lst in lists]
    assert all(len(x) <= math.ceil(share * 10) for x in explored)
    assert abs(sum(map(len, explored)) / (10 * len(lists)) - share) < 0.05
    assert all(lst[-len(x) :] == x for lst, x in zip(lists, explored, strict=True) if x)
    for entry in (e for x in explored for e in x):
        assert entry.reason.startswith("new: we are trying it out")
        catalog = model._catalog
        assert catalog.events[catalog.ids.get(entry.item_id)] < model.fresh_threshold
    assert all(
        [e.score for e in lst] == sorted((e.score for e in lst), reverse=True) for lst in lists
    )
    again = _exploring(seed=5, share=share)[1]
    assert [[e.item_id for e in x] for x in again] == [[e.item_id for e in x] for x in lists]
    other = _exploring(seed=6, share=share)[1]
    assert [[e.item_id for e in x] for x in other] != [[e.item_id for e in x] for x in lists]


def test_no_exploration_by_default() -> None:
    _, lists = _exploring(seed=5, share=0.0)
    assert not any("explore" in e.scores for lst in lists for e in lst)


def test_reasons_name_the_source_that_put_the_item_there() -> None:
    model = MultiTaskRecommender(**NO_EXPIRY)
    _two_genre_world(model, n_events=600)
    t = 1000.0
    for n in range(30):  # a planted pair: everyone who clicks anchor clicks planted
        model.learn_one(Event(f"fan{n}", "anchor", "click", t))
        model.learn_one(Event(f"fan{n}", "planted", "click", t + 1))
        t += 2
    model.add_item(Item("anchor", {"title": "The Anchor"}))
    model.learn_one(Event("probe", "anchor", "click", t))
    top = model.recommend(["probe"], 10)[0]
    assert (top[0].item_id, top[0].reason) == ("planted", "similar to The Anchor you clicked")
    stranger = model.recommend(["nobody"], 10)[0]
    assert {e.reason for e in stranger} == {"popular now"}


def test_the_content_map_is_the_ridge_solution_with_an_unpenalised_intercept() -> None:
    from stream.multitask.content_map import ContentEmbeddingMap

    rng = np.random.default_rng(4)
    content = (rng.random((300, 40)) < 0.1) * rng.random((300, 40))  # mostly zeros
    targets = rng.normal(size=(300, 9))
    fitted = ContentEmbeddingMap(ridge=0.7)
    assert fitted.fit(content, targets)
    centred = content - content.mean(axis=0)
    weights = np.linalg.solve(
        centred.T @ centred + 0.7 * np.eye(40), centred.T @ (targets - targets.mean(axis=0))
    )
    expected = (content[:20] - content.mean(axis=0)) @ weights + targets.mean(axis=0)
    assert np.allclose(fitted.predict(content[:20]), expected, atol=1e-10)
    assert not ContentEmbeddingMap(min_samples=500).fit(content, targets)
