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


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(a, b):  # noqa: ANN001, ANN202
    """``a . b``, summed in whatever order vectorises (so not bit-equal to BLAS)."""
    total = 0.0
    for f in range(a.shape[0]):
        total += a[f] * b[f]
    return total


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
    mf_user,
    mf_items,
    mf_bias,
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
    - ``mf``: the MF scores ``mf_items[j] . mf_user + mf_bias[j]`` min-max
      scaled to [0, 1] (an empty ``mf_user``: zeros);
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
    if mf_user.shape[0] and n_items:
        row = out[ROW_MF]
        for j in range(n_items):
            row[j] = _dot(mf_items[j], mf_user) + mf_bias[j]
        low, high = row[0], row[0]
        for j in range(1, n_items):
            low = min(low, row[j])
            high = max(high, row[j])
        span = high - low
        if span > 0:
            for j in range(n_items):
                row[j] = (row[j] - low) / span
        else:
            row[:] = 0.0
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
def learn_pool_pairs(weights, features, picked, n_pairs, draws, learning_rate):  # noqa: ANN001, ANN201
    """RankNet steps on (picked, passed-over) pairs of one pool; returns how many it learned.

    The passed-over candidates are ``n_pairs`` distinct rows other than
    ``picked``, drawn by a partial Fisher-Yates shuffle driven by ``draws``
    (uniform numbers in [0, 1), at least ``n_pairs`` of them). Each step:
    ``w += lr * d / (1 + exp(w . d))`` with ``d = features[picked] - features[other]``,
    the gradient of ``-log sigmoid(w . d)``.
    """
    n_rows, n_features = features.shape
    others = np.empty(n_rows - 1, dtype=np.int64)
    at = 0
    for r in range(n_rows):
        if r != picked:
            others[at] = r
            at += 1
    take = min(n_pairs, others.shape[0])
    difference = np.empty(n_features)
    for step in range(take):
        # Swap a random one of the not-yet-drawn others into place ``step``.
        chosen = step + min(int(draws[step] * (others.shape[0] - step)), others.shape[0] - step - 1)
        others[step], others[chosen] = others[chosen], others[step]
        other = others[step]
        margin = 0.0
        for f in range(n_features):
            difference[f] = features[picked, f] - features[other, f]
            margin += difference[f] * weights[f]
        scale = learning_rate / (1.0 + np.exp(min(margin, 30.0)))
        for f in range(n_features):
            weights[f] += scale * difference[f]
    return take
