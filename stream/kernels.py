"""Compiled learning steps: small updates that numpy would spend calls on.

Learning an event updates a few short vectors; written as numpy
expressions each update is several calls of a microsecond or more, and the
calls, not the arithmetic, were most of the cost. Each function here is one
call into a loop compiled by numba. Ranking's compiled loops are in
:mod:`stream.ranking_pass`.
"""

from __future__ import annotations

import numba
import numpy as np


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


@numba.njit(cache=True)
def decay_and_add(profiles, decays, weight, vector):  # noqa: ANN001, ANN201
    """``profiles[r] = profiles[r] * decays[r] + weight * vector`` for every row ``r``.

    numpy's ``profiles *= decays[:, None]; profiles += weight * vector``,
    rounded step by step the same way, in one call.
    """
    for r in range(profiles.shape[0]):
        decay = decays[r]
        for c in range(profiles.shape[1]):
            profiles[r, c] = profiles[r, c] * decay + weight * vector[c]


@numba.njit(cache=True)
def index_of(values, value):  # noqa: ANN001, ANN201
    """Position of the first ``value`` in ``values``; -1 when absent (one pass, no temporaries)."""
    for position in range(values.shape[0]):
        if values[position] == value:
            return position
    return -1
