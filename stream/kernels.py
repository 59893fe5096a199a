"""Compiled inner loops of ranking one user: signals, candidates, features.

Ranking one user touches every item a handful of times (normalise each
signal, blend them, pick the best) and then builds a feature row for each of
~110 candidates. Written as numpy expressions that is ~80 calls of a few
microseconds each, and the calls, not the arithmetic, were most of the cost
of ranking. Each function here is one pass in a loop compiled by numba.

The arithmetic is the numpy version's, operation for operation, so the
results are the same to the last bit: the figures measured before these
kernels existed still hold (``tests/test_kernels.py`` checks it against the
numpy expressions). Matrix products stay with numpy (BLAS), and so does
``argpartition``: a compiled selection would break ties among equal scores
differently, and that alone moved catalog coverage on MovieLens.
"""

from __future__ import annotations

import numba
import numpy as np

#: Rows of the signal matrix ``signal_matrix`` fills (``SIGNAL_ROWS`` of the multitask model).
ROW_CF, ROW_MF, ROW_POPULARITY, ROW_UCF, ROW_BLEND, ROW_CF_RECENT = range(6)


@numba.njit(cache=True)
def _scale_by_max(raw, inverse, out):  # noqa: ANN001, ANN202
    """``out = raw * inverse`` (``raw`` alone when ``inverse`` is empty), divided by
    its maximum when that is positive.

    Simple loops, one job each, so LLVM vectorises them (true division, as
    numpy does it: no reciprocal, no reassociation).
    """
    n = out.shape[0]
    if inverse.shape[0]:
        for j in range(n):
            out[j] = raw[j] * inverse[j]
    else:
        for j in range(n):
            out[j] = raw[j]
    top = out[0] if n else 0.0
    for j in range(1, n):
        top = max(top, out[j])
    if top > 0:
        for j in range(n):
            out[j] = out[j] / top


@numba.njit(cache=True)
def signal_matrix(  # noqa: ANN001, ANN201, PLR0913
    n_items,
    cf_raw,
    cf_recent_raw,
    inverse_norms,
    mf_raw,
    popularity_scaled,
    popularity_inverse_top,
    ucf_raw,
    blend_rows,
    blend_weights,
    recent_cf_weight,
):
    """One user's signal matrix, shape ``(6, n_items)``, rows ``ROW_*``.

    - ``cf``, ``cf_recent``: raw item-CF sums times ``inverse_norms``, divided
      by their maximum when positive (an empty raw array: all zeros);
    - ``mf``: ``mf_raw`` min-max scaled to [0, 1] (empty: zeros);
    - ``popularity``: ``popularity_scaled * popularity_inverse_top`` (items
      beyond the array: 0);
    - ``ucf``: ``ucf_raw`` divided by its maximum (empty: zeros);
    - ``blend``: ``recent_cf_weight * cf_recent + sum_r blend_weights[r] * row[blend_rows[r]]``,
      summed in the order given (float addition is not associative).
    """
    out = np.zeros((6, n_items))
    if cf_raw.shape[0]:
        _scale_by_max(cf_raw, inverse_norms, out[ROW_CF])
    if cf_recent_raw.shape[0]:
        _scale_by_max(cf_recent_raw, inverse_norms, out[ROW_CF_RECENT])
    if ucf_raw.shape[0]:
        _scale_by_max(ucf_raw, inverse_norms[:0], out[ROW_UCF])
    if mf_raw.shape[0]:
        low, high = mf_raw[0], mf_raw[0]
        for j in range(1, n_items):
            low = min(low, mf_raw[j])
            high = max(high, mf_raw[j])
        span = high - low
        if span > 0:
            row = out[ROW_MF]
            for j in range(n_items):
                row[j] = (mf_raw[j] - low) / span
    if popularity_inverse_top > 0:
        known = min(n_items, popularity_scaled.shape[0])
        row = out[ROW_POPULARITY]
        for j in range(known):
            row[j] = popularity_scaled[j] * popularity_inverse_top
    # Per item: ((0 + w_0 x_0) + w_1 x_1) + ..., then recent + that, the
    # order numpy's sum gave; looping over rows outside keeps it per item.
    blend = out[ROW_BLEND]
    for r in range(blend_rows.shape[0]):
        row = out[blend_rows[r]]
        weight = blend_weights[r]
        for j in range(n_items):
            blend[j] += weight * row[j]
    recent = out[ROW_CF_RECENT]
    for j in range(n_items):
        blend[j] = recent_cf_weight * recent[j] + blend[j]
    return out


@numba.njit(cache=True)
def pair_features(  # noqa: ANN001, ANN201, PLR0913
    signals,
    items,
    item_static,
    taste_affinity,
    user_log_count,
    user_mean_rating,
    gap,
    segment_scaled,
    segment_top,
    n_features,
):
    """Shared feature rows of one user's (user, item) pairs (``FEATURE_NAMES`` order).

    ``signals``: the user's signal matrix (``signal_matrix``); ``item_static``:
    per-item columns (log count, is fresh, mean rating, log price, year);
    ``taste_affinity``: (items, 2) content cosines, or shape (0, 2) for a
    user without a profile; ``segment_scaled / segment_top``: the segment's
    popularity relative to its top item (0 beyond the array, or when
    ``segment_top`` is not positive: no segment).
    """
    n = items.shape[0]
    out = np.empty((n, n_features))
    has_taste = taste_affinity.shape[0] == n and n > 0
    for r in range(n):
        item = items[r]
        cf = signals[ROW_CF, item]
        mf = signals[ROW_MF, item]
        popularity = signals[ROW_POPULARITY, item]
        row = out[r]
        row[0] = cf
        row[1] = mf
        row[2] = popularity
        row[3] = signals[ROW_UCF, item]
        row[4] = signals[ROW_BLEND, item]
        if has_taste:
            row[5] = taste_affinity[r, 0]
            row[6] = taste_affinity[r, 1]
        else:
            row[5] = 0.0
            row[6] = 0.0
        row[7] = cf * row[5]
        row[8] = item_static[item, 0]
        row[9] = item_static[item, 1]
        row[10] = user_log_count
        row[11] = item_static[item, 2]
        row[12] = user_mean_rating
        row[13] = item_static[item, 3]
        row[14] = item_static[item, 4]
        row[15] = gap
        row[16] = gap * popularity
        row[17] = gap * cf
        row[18] = signals[ROW_CF_RECENT, item]
        if segment_top > 0 and item < segment_scaled.shape[0]:
            row[19] = segment_scaled[item] / segment_top
        else:
            row[19] = 0.0
        # A linear head cannot tell on its own that MF means something else for
        # a new item (whose vector is mostly its content prior) than for a warm one.
        row[20] = mf * item_static[item, 1]
    return out


@numba.njit(cache=True)
def contained_in(values, pool):  # noqa: ANN001, ANN201
    """Whether each of ``values`` is in ``pool`` (both small: a few hundred at most)."""
    out = np.zeros(values.shape[0], dtype=np.bool_)
    for i in range(values.shape[0]):
        for j in range(pool.shape[0]):
            if values[i] == pool[j]:
                out[i] = True
                break
    return out
