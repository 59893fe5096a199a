"""The compiled ranking loops give the numpy expressions' numbers.

The reference functions below are the multitask model's signal and feature
code as it was written in numpy before ``stream.ranking_pass`` replaced it.
Dot products (MF scores, content
cosines) are summed in a vectorised order rather than BLAS's, so values
agree to rounding (``CLOSE``), not bit for bit; everything else is the same
arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from stream.multitask import FEATURE_NAMES, SIGNAL_ROWS, _centred_rating

#: Agreement expected where only the order of a dot product's sum differs.
CLOSE = {"rtol": 1e-12, "atol": 1e-12}


def _scaled_by_max(scores):
    top = scores.max() if scores.size else 0.0
    return scores / top if top > 0 else scores


def reference_signals(model, user, n_items):
    """SIGNAL_ROWS from the hybrid's numpy vectors plus the recent item-CF, as before."""
    vectors = model._signal_vectors(user, n_items)
    if user is None:
        vectors["cf_recent"] = np.zeros(n_items)
    else:
        raw = model._cf_recent.scores(
            user,
            n_items,
            lambda: model._history.positive_recent(user, model.short_recency_decay),
        )
        vectors["cf_recent"] = _scaled_by_max(raw * model._cooccurrence.inverse_norms(n_items))
    vectors["blend"] = model.recent_cf_weight * vectors["cf_recent"] + sum(
        model.blend[name] * vectors[name] for name in model.blend
    )
    return np.vstack([vectors[name] for name in SIGNAL_ROWS])


def reference_features(model, user, items, n_items, now):
    signals = model._vectors(user, n_items)[:, items].T
    model._ensure_item_static(int(items.max()) + 1)
    static = model._item_static[items]
    user_id = model._users.external(user)
    out = np.empty((items.shape[0], len(FEATURE_NAMES)))
    out[:, 0:5] = signals[:, 0:5]
    counts = model._user_counts
    out[:, 5:7] = model._taste.affinity(user, items)
    out[:, 10] = math.log1p(counts.events[user]) / 8.0
    out[:, 12] = _centred_rating(float(counts.rating_sum[user]), float(counts.rating_n[user]))
    out[:, 7] = signals[:, 0] * out[:, 5]
    out[:, 8:10] = static[:, 0:2]
    out[:, 11] = static[:, 2]
    out[:, 13:15] = static[:, 3:5]
    gap = model._user_gap(user, now)
    out[:, 15] = gap
    out[:, 16] = gap * signals[:, 2]
    out[:, 17] = gap * signals[:, 0]
    out[:, 18] = signals[:, 5]
    out[:, 19] = model._segments.scores(user_id, items)
    out[:, 20] = signals[:, 1] * static[:, 1]
    return out


def test_signal_matrix_equals_the_numpy_signals(trained):
    trained, users = trained
    n_items = trained._items.capacity
    for user in users:
        compiled = trained._signal_matrix(user, n_items, None)
        reference = reference_signals(trained, user, n_items)
        assert compiled.shape == reference.shape
        assert np.allclose(compiled, reference, **CLOSE), f"user row {user}"
        assert compiled[SIGNAL_ROWS.index("cf_recent")].any()  # the test covers every row
        assert compiled[SIGNAL_ROWS.index("ucf")].any()
    stranger = trained._signal_matrix(None, n_items, None)
    assert np.allclose(stranger, reference_signals(trained, None, n_items), **CLOSE)


def test_pair_features_equal_the_numpy_features(trained):
    trained, users = trained
    n_items = trained._items.capacity
    items = np.arange(0, n_items, 3)
    used = np.zeros(len(FEATURE_NAMES), dtype=bool)
    for user in users:
        compiled = trained._features(user, items, n_items)
        reference = reference_features(trained, user, items, n_items, None)
        assert np.allclose(compiled, reference, **CLOSE), f"user row {user}"
        used |= (compiled != 0).any(axis=0)
    # Every column is exercised (a column left at zero would hide a wrong index).
    assert [name for name, on in zip(FEATURE_NAMES, used, strict=True) if not on] == []


def test_index_of_finds_the_first_match_or_says_absent():
    from stream.kernels import index_of

    values = np.array([5, 3, 9, 3], dtype=np.int64)
    assert [index_of(values, v) for v in (5, 3, 9, 4)] == [0, 1, 2, -1]
    assert index_of(values[:0], 5) == -1
