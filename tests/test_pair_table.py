"""The compiled item-pair store agrees with a plain dict through adds, forgets and repacks."""

from __future__ import annotations

from array import array

import numpy as np

from stream.signals.cooccurrence import ItemCooccurrence, PairTable, _Neighbours


def _reference_rows(table: PairTable, n_rows: int) -> dict[int, dict[int, float]]:
    rows = {}
    for source in range(n_rows):
        targets, weights = table.row(source)
        assert len(set(targets.tolist())) == targets.size  # a neighbour appears once per row
        assert table.row_length(source) == targets.size
        if targets.size:
            rows[source] = dict(zip(targets.tolist(), weights.tolist(), strict=True))
    return rows


def test_pair_table_matches_a_dict_through_adds_forgets_and_repacks():
    rng = np.random.default_rng(7)
    table = PairTable()
    expected: dict[int, dict[int, float]] = {}
    n_items = 300
    for step in range(4000):
        item = int(rng.integers(n_items))
        window = rng.integers(n_items, size=int(rng.integers(0, 12)))
        weights = rng.choice([0.5, 1.0, 2.0, -1.0], size=window.size)
        table.add_pairs(item, 1.5, window, weights, 1.0, 1.0)
        for other, weight in zip(window.tolist(), weights.tolist(), strict=True):
            if other == item or weight <= 0:
                continue
            pair = min(1.5, weight)
            for a, b in ((item, other), (other, item)):
                expected.setdefault(a, {})
                expected[a][b] = expected[a].get(b, 0.0) + pair
        if step % 500 == 499:  # expire a handful of items, as the TTL sweep does
            gone = rng.choice(n_items, size=20, replace=False)
            table.forget(gone)
            for item_gone in gone.tolist():
                expected.pop(item_gone, None)
                for row in expected.values():
                    row.pop(item_gone, None)
            expected = {k: v for k, v in expected.items() if v}
    assert _reference_rows(table, n_items) == expected
    assert table.live == sum(len(row) for row in expected.values())
    # Lookups go through the hash table, not the chains.
    sources = np.array(sorted(expected), dtype=np.int64)
    target = next(iter(expected[int(sources[0])]))
    looked_up = table.values(sources, target)
    assert looked_up.tolist() == [expected[s].get(target, 0.0) for s in sources.tolist()]


def _packed_runs(table: PairTable, source: int) -> list[list[int]]:
    """The row's entries that the last repack laid out, split into runs of consecutive slots."""
    runs: list[list[int]] = []
    at = int(table.head[source])
    while at >= 0:
        if at < table.packed:
            if runs and runs[-1][-1] + 1 == at:
                runs[-1].append(at)
            else:
                runs.append([at])
        at = int(table.next[at])
    return runs


def test_appended_entries_are_repacked_into_contiguous_rows():
    rng = np.random.default_rng(11)
    table = PairTable()
    table.MIN_UNPACKED = 64  # repack for locality early, several times
    table.reserve(200, 50_000)  # room enough: no repack to grow
    expected: dict[int, dict[int, float]] = {}
    n_items, repacks = 200, 0
    for _ in range(3000):
        item = int(rng.integers(n_items))
        window = rng.integers(n_items, size=int(rng.integers(1, 10)))
        packed = table.packed
        table.add_pairs(item, 1.0, window, np.ones(window.size), 1.0, 1.0)
        repacks += table.packed != packed
        for other in window.tolist():
            if other != item:
                for a, b in ((item, other), (other, item)):
                    expected.setdefault(a, {})
                    expected[a][b] = expected[a].get(b, 0.0) + 1.0
        # Appended (scattered) entries stay a bounded share of the table.
        slack = max(table.MIN_UNPACKED, table.live * table.UNPACKED_SHARE)
        assert table.used - table.packed <= slack + 2 * window.size
    assert repacks >= 3
    assert _reference_rows(table, n_items) == expected
    # What a repack laid out is one run of consecutive slots per row.
    assert all(len(_packed_runs(table, source)) <= 1 for source in range(n_items))


def test_add_rows_sums_rows_scaled():
    table = PairTable()
    table.add_pairs(0, 1.0, np.array([1, 2]), np.array([1.0, 1.0]), 1.0, 1.0)
    table.add_pairs(3, 2.0, np.array([1]), np.array([2.0]), 1.0, 1.0)
    out = np.zeros(4)
    table.add_rows(out, np.array([1, 0]), np.array([10.0, 1.0]))
    # row 1: {0: 1, 3: 2}; row 0: {1: 1, 2: 1}
    assert out.tolist() == [10.0, 1.0, 1.0, 20.0]


def test_cooccurrence_from_a_checkpoint_before_the_pair_table_loads():
    """A pickled model from before PairTable kept rows of ``_Neighbours``; it must still load."""
    current = ItemCooccurrence()
    current.learn(0, 1.0, [], [])
    current.learn(1, 1.0, [0], [1.0])
    current.learn(2, 2.0, [0, 1], [1.0, 1.0])
    old_rows = []
    for source in range(3):
        row = object.__new__(_Neighbours)
        targets, weights = current._pairs.row(source)
        row.__setstate__(
            (None, {"slot": {}, "ids": array("q", targets), "vals": array("d", weights)})
        )
        old_rows.append(row)
    state = {k: v for k, v in current.__dict__.items() if k != "_pairs"}
    state["_rows"] = old_rows
    loaded = ItemCooccurrence.__new__(ItemCooccurrence)
    loaded.__setstate__(state)
    for a in range(3):
        for b in range(3):
            assert loaded.similarity(a, b) == current.similarity(a, b)
    assert loaded.similarity(0, 1) > 0
    assert loaded.n_pairs() == current.n_pairs() == 6


def test_carried_vectors_step_with_the_pairs_as_two_separate_steps_would():
    """One compiled call learns the pairs and steps the carried vectors, bit for bit
    as learning the pairs and then decaying and adding the item's new row."""
    rng = np.random.default_rng(4)
    fused, stepwise = ItemCooccurrence(), ItemCooccurrence()
    n_items = 40
    carried = [np.zeros(n_items), np.zeros(n_items)]
    expected = [np.zeros(n_items), np.zeros(n_items)]
    decays = (0.9, 0.3)
    recent: list[int] = []
    for _ in range(3000):
        item = int(rng.integers(n_items))
        weight = float(rng.choice([0.5, 1.0, 2.0, -1.0]))
        window = np.array(recent[-10:], dtype=np.int64)
        weights = np.ones(window.size)
        fused.learn(item, weight, window, weights, list(zip(carried, decays, strict=True)))
        stepwise.learn(item, weight, window, weights)
        for vector, decay in zip(expected, decays, strict=True):
            vector *= decay
            if weight > 0:
                stepwise.add_row_to(vector, item, weight)
        recent.append(item)
    for got, want in zip(carried, expected, strict=True):
        assert np.array_equal(got, want)
        assert np.count_nonzero(got) > n_items // 2


def test_a_window_item_beyond_the_reserved_rows_is_an_error_not_a_stray_write():
    import pytest

    table = PairTable()
    with pytest.raises(IndexError, match="no row"):
        table.add_pairs_and_carry(
            1, 1.0, np.array([5000]), np.array([1.0]), 1.0, 1.0, (np.zeros(0),), (1.0,), 1.0, rows=2
        )
