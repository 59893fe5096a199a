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
    - ``blend``: ``recent_cf_weight * cf_recent + sum_r blend_weights[r] * row[blend_rows[r]]``.

    Two passes over the items: raw values and their extremes, then scaling
    and the blend. The arithmetic may be reordered (vectorised sums,
    multiplying by a reciprocal), so results agree with the numpy
    expressions to rounding, not bit for bit.
    """
    out = np.zeros((6, n_items))
    has_cf = cf_raw.shape[0] > 0
    has_recent = cf_recent_raw.shape[0] > 0
    has_ucf = ucf_raw.shape[0] > 0
    has_mf = mf_user.shape[0] > 0 and n_items > 0
    cf, recent, mf, ucf = out[ROW_CF], out[ROW_CF_RECENT], out[ROW_MF], out[ROW_UCF]
    cf_top = recent_top = ucf_top = mf_high = -np.inf
    mf_low = np.inf
    for j in range(n_items):
        if has_cf:
            cf[j] = cf_raw[j] * inverse_norms[j]
            cf_top = max(cf_top, cf[j])
        if has_recent:
            recent[j] = cf_recent_raw[j] * inverse_norms[j]
            recent_top = max(recent_top, recent[j])
        if has_ucf:
            ucf[j] = ucf_raw[j]
            ucf_top = max(ucf_top, ucf[j])
        if has_mf:
            score = mf_bias[j]
            row = mf_items[j]
            for f in range(mf_user.shape[0]):
                score += row[f] * mf_user[f]
            mf[j] = score
            mf_low = min(mf_low, score)
            mf_high = max(mf_high, score)
    # A row whose maximum is not positive stays as it is (all zeros or less).
    cf_scale = 1.0 / cf_top if cf_top > 0 else 1.0
    recent_scale = 1.0 / recent_top if recent_top > 0 else 1.0
    ucf_scale = 1.0 / ucf_top if ucf_top > 0 else 1.0
    mf_span = mf_high - mf_low if has_mf else 0.0
    mf_scale = 1.0 / mf_span if mf_span > 0 else 0.0
    known = min(n_items, popularity_scaled.shape[0]) if popularity_inverse_top > 0 else 0
    popularity = out[ROW_POPULARITY]
    blend = out[ROW_BLEND]
    weights = np.zeros(6)
    for r in range(blend_rows.shape[0]):
        weights[blend_rows[r]] += blend_weights[r]
    weights[ROW_CF_RECENT] += recent_cf_weight
    for j in range(n_items):
        cf[j] *= cf_scale
        recent[j] *= recent_scale
        ucf[j] *= ucf_scale
        mf[j] = (mf[j] - mf_low) * mf_scale if has_mf else 0.0
        if j < known:
            popularity[j] = popularity_scaled[j] * popularity_inverse_top
        blend[j] = (
            weights[ROW_CF] * cf[j]
            + weights[ROW_MF] * mf[j]
            + weights[ROW_POPULARITY] * popularity[j]
            + weights[ROW_UCF] * ucf[j]
            + weights[ROW_CF_RECENT] * recent[j]
        )
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
