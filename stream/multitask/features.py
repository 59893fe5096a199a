"""The retrieval blend, and feature rows as scored at another moment.

The rows themselves are built in :func:`~stream.multitask.ranking_pass.gather_pool`
(columns :data:`~stream.multitask.layout.FEATURE_NAMES`). Source scores are
scaled per pool (each by the pool's largest, MF min-max), and the scales are
kept with the pool, so the row of an item outside the pool (the item a user
engaged with, learned later) is scaled exactly as the pool was.
"""

from __future__ import annotations

import numpy as np

from stream.multitask.layout import FEATURE

#: The retrieval blend: what orders the pool before the heads have learned,
#: and what the relevance head starts from (its prior weight on ``blend``).
DEFAULT_BLEND: dict[str, float] = {
    "cf": 1.0,
    "mf": 0.2,
    "popularity": 0.1,
    "genre_popularity": 0.1,
    "ucf": 0.1,
}


def with_gap(row: np.ndarray, gap: float) -> np.ndarray:
    """A copy of a feature row as scored at another moment (only the session gap moves)."""
    out = row.copy()
    out[FEATURE["user_gap"]] = gap
    out[FEATURE["gap_x_popularity"]] = gap * out[FEATURE["popularity"]]
    out[FEATURE["gap_x_cf"]] = gap * out[FEATURE["cf"]]
    return out
