"""The user's lifecycle in memory: forget_user leaves nothing, idle users and items expire."""

from __future__ import annotations

import pickle
import random
from collections import deque

import numpy as np
import pytest

from stream.events import Event, Item, UserProfile
from stream.hybrid import HybridRecommender
from stream.multitask import MultiTaskRecommender
from stream.registry import MODELS, build_model

FORGOTTEN = "forget-me-42"


def _events(n_users: int, n_items: int, n_events: int, seed: int, start: float = 1e6):
    rng = random.Random(seed)
    kinds = ("view", "click", "add_to_cart", "rating")
    out = []
    for n in range(n_events):
        kind = rng.choice(kinds)
        out.append(
            Event(
                f"u{rng.randrange(n_users)}",
                f"i{rng.randrange(n_items)}",
                kind,
                start + 1.5 * n,
                float(rng.randint(1, 5)) if kind == "rating" else None,
            )
        )
    return out


def _containers(obj, path="model", seen=None):
    """Every dict, deque and numpy array reachable from ``obj``, with its path."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return
    seen.add(id(obj))
    if isinstance(obj, (dict, deque, np.ndarray)):
        yield path, obj
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            yield from _containers(value, f"{path}[{key!r}]", seen)
    elif isinstance(obj, (list, tuple, set, frozenset, deque)):
        for n, value in enumerate(obj):
            yield from _containers(value, f"{path}[{n}]", seen)
    elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
        names = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            names += [s for s in getattr(cls, "__slots__", ()) if isinstance(s, str)]
        for name in names:
            if hasattr(obj, name):
                yield from _containers(getattr(obj, name), f"{path}.{name}", seen)


def _item_only(path: str) -> bool:
    """Int arrays that hold item rows, counts or storage positions by construction, never
    user ids: the item -> domain codes, the item-pair table (entry positions, hash keys),
    the user-pair table's positions and counts (its targets and keys hold user rows:
    checked); the multitask model's catalog, popular lists, ring counts, candidate pools
    and ranking scratch (epochs)."""
    storage = (".head", ".next", ".entries", ".length")
    return (
        "_of_item" in path
        or "._pairs." in path
        or ("._overlaps." in path and path.endswith(storage))
        or path.startswith(("model._catalog.", "model._popular.", "model._retrieval."))
        or path.startswith("model._pools")
        or path.endswith("counts")
    )


def _row_of(model, user_id: str) -> int | None:
    users = model._users
    return users.ids.get(user_id) if isinstance(model, MultiTaskRecommender) else users.get(user_id)


def _item_row(model, item_id: str) -> int | None:
    if isinstance(model, MultiTaskRecommender):
        return model._catalog.ids.get(item_id)
    return model._items.get(item_id)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forget_user_leaves_nothing_about_the_user_in_memory(name: str) -> None:
    model = build_model(name, user_ttl_seconds=None, item_ttl_seconds=None)
    for n in range(40):
        model.add_item(Item(f"i{n}", {"title": f"Film {n}", "genres": ["Drama"], "year": 1990}))
    # More users than items, and the forgotten user last: its row is larger than
    # any item row, so an int key equal to it can only be about this user.
    events = _events(n_users=90, n_items=40, n_events=3000, seed=3)
    model.learn_many(events)
    if hasattr(model, "add_profile"):
        model.add_profile(UserProfile(FORGOTTEN, {"age": 33, "gender": "F"}))
    mine = [
        Event(FORGOTTEN, f"i{n % 40}", kind, 1e6 + 5000 + n, 4.0 if kind == "rating" else None)
        for n, kind in enumerate(["view", "click", "view", "add_to_cart", "rating", "view"] * 4)
    ]
    model.learn_many(mine)
    model.recommend(["u1", FORGOTTEN], 10)  # the forgotten user ranked last
    row = _row_of(model, FORGOTTEN)
    assert row is not None and row > 40
    assert FORGOTTEN.encode() in pickle.dumps(model)

    assert model.forget_user(FORGOTTEN) is True

    assert FORGOTTEN.encode() not in pickle.dumps(model)
    assert not model._mf.user_vector(row).any()
    for path, container in _containers(model):
        if isinstance(container, dict):
            assert not any(type(key) is int and key == row for key in container), path
        elif isinstance(container, deque):
            assert not any(type(value) is int and value == row for value in container), path
        elif container.dtype.kind == "i" and container.ndim == 1 and not _item_only(path):
            assert row not in container.tolist(), path
        elif path.endswith("._overlaps._slots"):  # user-pair hash keys: (user << 32) | user
            keys = container[:, 0][container[:, 0] >= 0]
            assert row not in (keys >> 32).tolist() + (keys & 0xFFFFFFFF).tolist(), path
    if isinstance(model, MultiTaskRecommender):
        # Nor their last pool and row, kept for the event that usually follows a ranking.
        assert row not in model._pools and model._last_row is None
        assert model._heads._row_dict is None  # their last event's feature row
        assert not model._users.events[row] and not model._users.ring_counts[row]
        assert (model._users.ring_items[row] == -1).all()
        assert row not in model._engagers.rings  # no item names them as a recent engager
        assert model._users.segment(FORGOTTEN) is None
    # And the row, reused by a newcomer, starts as a stranger's.
    model.learn_one(Event("newcomer", "i1", "click", 1e7))
    assert _row_of(model, "newcomer") == row
    seen = model._users.seen if isinstance(model, MultiTaskRecommender) else model._history._seen
    assert seen[row] == {_item_row(model, "i1")}


def _ever_new_users(n_events: int, per_user: int = 5, n_items: int = 50, gap: float = 60.0):
    rng = random.Random(7)
    for n in range(n_events):
        yield Event(f"visitor{n // per_user}", f"i{rng.randrange(n_items)}", "click", n * gap)


def test_idle_users_expire_and_their_rows_are_reused() -> None:
    # Each visitor is active for 5 events (5 minutes), then never returns.
    model = MultiTaskRecommender(user_ttl_seconds=3600.0, item_ttl_seconds=None, expiry_every=100)
    sizes = []
    for n, event in enumerate(_ever_new_users(20_000), start=1):
        model.learn_one(event)
        if n % 2000 == 0:
            model.recommend([event.user_id], 10)
            sizes.append(model.state_size())
    # 60 visitors per hour stay live; 4,000 came and went.
    assert max(s["users"] for s in sizes[2:]) < 120
    assert sizes[-1]["user_rows"] == sizes[2]["user_rows"] < 200
    assert sizes[-1]["histories"] < 120 and sizes[-1]["tracked_users"] < 120
    assert sizes[-1]["candidate_pools"] < 120


def test_without_expiry_state_grows_with_every_new_user() -> None:
    model = MultiTaskRecommender(user_ttl_seconds=None, item_ttl_seconds=None)
    model.learn_many(_ever_new_users(5_000))
    assert model.state_size()["users"] == 1000


def test_an_idle_item_expires_and_its_reused_row_starts_clean() -> None:
    model = MultiTaskRecommender(user_ttl_seconds=None, item_ttl_seconds=1000.0, expiry_every=1)
    model.add_item(Item("old", {"title": "Old Film", "genres": ["Western"]}))
    for n in range(20):  # "old" and "partner" are engaged with together, early on
        model.learn_one(Event(f"early{n}", "old", "click", float(n)))
        model.learn_one(Event(f"early{n}", "partner", "click", float(n) + 0.5))
    catalog = model._catalog
    old_row = catalog.ids.get("old")
    partner = catalog.ids.get("partner")
    assert model._neighbours.similarity(old_row, partner) > 0
    for n in range(50):  # later, only "partner" is active
        model.learn_one(Event(f"late{n % 5}", "partner", "view", 5000.5 + n))
    assert catalog.ids.get("old") is None
    assert all(
        "old" not in [e.item_id for e in lst] for lst in model.recommend(["early1", "late1"], 50)
    )
    assert old_row not in model._users.seen[model._users.ids.get("early1")]
    assert old_row not in model._users.ring_items
    model.learn_one(Event("solo", "newcomer", "click", 6000.0))
    assert catalog.ids.get("newcomer") == old_row  # the freed row is reused...
    assert model._neighbours.similarity(old_row, partner) == 0.0  # ...clean
    assert model._neighbours.similarity(partner, old_row) == 0.0
    assert catalog.primary_genre(old_row) is None
    assert catalog.events[old_row] == 1
    assert "newcomer" in [e.item_id for e in model.recommend(["stranger"], 50)[0]]


def test_catalog_records_start_their_idle_time_with_the_stream() -> None:
    # A catalog delivered before the first event (timestamp 0) does not expire at once.
    model = HybridRecommender(item_ttl_seconds=100.0, expiry_every=1)
    model.add_item(Item("listed", {"title": "Listed"}))
    model.learn_one(Event("u", "x", "click", 1e9))
    model.learn_one(Event("u", "y", "click", 1e9 + 50))
    assert model._items.get("listed") is not None
    model.learn_one(Event("u", "z", "click", 1e9 + 150))
    assert model._items.get("listed") is None


def test_a_model_with_every_feature_in_use_pickles() -> None:
    model = MultiTaskRecommender(
        exploration=0.2, transfer_refit_every=200, user_ttl_seconds=500.0, expiry_every=50
    )
    for n in range(30):
        model.add_item(Item(f"i{n}", {"title": f"F{n}", "genres": ["A" if n % 2 else "B"]}))
    model.add_profile(UserProfile("u1", {"age": 30, "gender": "M"}))
    model.learn_many(_events(n_users=20, n_items=30, n_events=1500, seed=1, start=0.0))
    model.recommend(["u1", "u2"], 10, domain="books")
    clone = pickle.loads(pickle.dumps(model))
    assert [e.item_id for e in clone.recommend(["u3"], 5)[0]] == [
        e.item_id for e in model.recommend(["u3"], 5)[0]
    ]


def test_per_user_state_does_not_grow_with_the_catalog():
    """The same users and events over a catalog 100 times larger: the user side's
    arrays hold the same bytes per user row, and a pool stays within its size."""

    def trained(n_items: int) -> MultiTaskRecommender:
        model = build_model("multitask", pool_size=50)
        for n in range(n_items):
            model.add_item(Item(f"i{n}", {"genres": [f"g{n % 20}"], "title": f"Film {n}"}))
        for step in range(2000):
            item = (step * 7919) % 200  # the same 200 items are engaged with in both
            model.learn_one(Event(f"u{step % 40}", f"i{item}", "click", float(step)))
        return model

    small, large = trained(200), trained(20_000)

    def user_bytes(model: MultiTaskRecommender) -> int:
        users = model._users
        arrays = [users.ring_items, users.ring_weights, users.ring_kinds, users.taste]
        return sum(a.nbytes // a.shape[0] for a in arrays)

    assert user_bytes(small) == user_bytes(large)
    for model in (small, large):
        model.recommend([f"u{n}" for n in range(40)], 10)
        assert max(pool.items.shape[0] for pool in model._pools.values()) <= 50 + 10
