"""The item-side sync: what partition models hand each other merges to what one model learns."""

from __future__ import annotations

import random

import msgpack
import numpy as np
import pytest

from stream.evaluation.partitioned import PartitionedModel, partition_of
from stream.events import Event
from stream.multitask import MultiTaskRecommender

NO_EXPIRY = {"user_ttl_seconds": None, "item_ttl_seconds": None}
KINDS = ["view", "click", "add_to_cart", "purchase", "rating"]


def _events(n: int = 3000, users: int = 60, items: int = 80, seed: int = 3) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(KINDS)
        value = float(rng.randint(1, 5)) if kind == "rating" else None
        out.append(
            Event(f"u{rng.randrange(users)}", f"i{rng.randrange(items)}", kind, 1e6 + 60 * i, value)
        )
    return out


def _model() -> MultiTaskRecommender:
    return MultiTaskRecommender(**NO_EXPIRY)


def _by_item(model: MultiTaskRecommender) -> dict[str, tuple[float, float, float, float]]:
    catalog, neighbours = model._catalog, model._neighbours
    return {
        item: (
            float(catalog.events[row]),
            float(catalog.rating_sum[row]),
            float(catalog.rating_n[row]),
            float(neighbours.totals[row]),
        )
        for item, row in ((item, catalog.ids.get(item)) for item in catalog.ids.externals(
            list(range(len(catalog.ids)))
        ))
    }  # fmt: skip


def test_synced_partitions_count_every_event_exactly_once():
    events = _events()
    single = _model()
    for event in events:
        single.learn_one(event)
    parted = PartitionedModel(_model, 3, sync_every=97)
    for event in events:
        parted.learn_one(event)
    for index in range(3):
        parted.sync(index)  # hand out what is left since each one's last sync
    assert parted.records_sent > 0
    want = _by_item(single)
    for model in parted.models:
        got = _by_item(model)
        assert got.keys() == want.keys()
        for item, counts in want.items():
            assert got[item] == pytest.approx(counts), item
    # Without the sync a partition knows only its own users' engagements.
    apart = PartitionedModel(_model, 3)
    for event in events:
        apart.learn_one(event)
    assert sum(_by_item(apart.models[0])[i][0] for i in _by_item(apart.models[0])) < len(events)


def test_popularity_merges_to_the_single_models_decayed_sums():
    events = _events(1500)
    single = _model()
    parted = PartitionedModel(_model, 2, sync_every=50)
    for event in events:
        single.learn_one(event)
        parted.learn_one(event)
    parted.sync(0)
    parted.sync(1)

    def relative(model: MultiTaskRecommender) -> dict[str, float]:
        # Each copy decays to its own latest event time: compare scores relative to the top.
        scores = model._popular.overall.scores(len(model._catalog.ids))
        rows = model._catalog.ids
        return {i: scores[rows.get(i)] / scores.max() for i in ("i1", "i7", "i42")}

    want = relative(single)
    for model in parted.models:
        assert relative(model) == pytest.approx(want, rel=1e-6)


def test_merged_steps_are_not_handed_out_again():
    events = _events(600)
    a, b = _model(), _model()
    a.share_item_side()
    b.share_item_side()
    for event in events[:300]:
        a.learn_one(event)
    records = a.take_item_changes()
    b.merge_item_changes(msgpack.unpackb(msgpack.packb(records)))
    echoed = b.take_item_changes()
    assert not echoed  # b learned nothing itself: nothing of a's comes back
    heads = [r for r in records if "heads" in r]
    assert heads and np.asarray(heads[0]["learned"]).sum() > 0
    # Vectors are seeded by id, so after the merge both copies of an item agree.
    item = events[0].item_id
    va = a._mf.item_row(a._catalog.ids.get(item))[0]
    vb = b._mf.item_row(b._catalog.ids.get(item))[0]
    assert np.allclose(va, vb, atol=1e-5)


def test_a_record_of_another_format_is_refused_by_name():
    model = _model()
    with pytest.raises(ValueError, match="format 99"):
        model.merge_item_changes([{"v": 99, "item": "i1"}])


def test_one_partition_is_the_plain_model_and_routing_is_stable():
    events = _events(800)
    plain, parted = _model(), PartitionedModel(_model, 1, sync_every=10)
    for event in events:
        plain.learn_one(event)
        parted.learn_one(event)
    assert parted.recommend_ids("u3", 10) == plain.recommend_ids("u3", 10)
    assert partition_of("u3", 4) == partition_of("u3", 4)
    assert {partition_of(f"u{i}", 4) for i in range(50)} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="cannot share"):
        from stream.baselines import PopularityRecommender

        PartitionedModel(PopularityRecommender, 2, sync_every=10)
