"""Feature rows: what every task head reads about a (user, candidate) pair.

The columns are :data:`~stream.twostage.layout.FEATURE_NAMES`. Source scores
are scaled per pool (each by the pool's largest, MF min-max), and the scales
are kept with the pool, so the row of an item outside the pool (the item a
user engaged with, learned later) is scaled exactly as the pool was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.twostage.catalog import ItemCatalog
from stream.twostage.layout import FEATURE, N_FEATURES, SOURCE
from stream.twostage.retrieval import UserContext, taste_cosines

#: The retrieval blend: what orders the pool before the heads have learned,
#: and what the relevance head starts from (its prior weight on ``blend``).
DEFAULT_BLEND: dict[str, float] = {
    "cf": 1.0,
    "mf": 0.2,
    "popularity": 0.1,
    "genre_popularity": 0.1,
    "ucf": 0.1,
}

_SCALED = ("cf", "cf_recent", "ucf")


@dataclass(slots=True)
class Scales:
    """The pool's scales of its source scores (see the module)."""

    top: dict[str, float]
    mf_low: float
    mf_span: float


def pool_scales(raw: np.ndarray) -> Scales:
    top = {}
    for name in _SCALED:
        column = raw[:, SOURCE[name]]
        top[name] = float(column.max()) if column.size else 0.0
    mf = raw[:, SOURCE["mf"]]
    low = float(mf.min()) if mf.size else 0.0
    span = float(mf.max()) - low if mf.size else 0.0
    return Scales(top, low, span)


def feature_rows(
    ctx: UserContext,
    items: np.ndarray,
    raw: np.ndarray,
    catalog: ItemCatalog,
    scales: Scales,
    blend: dict[str, float],
) -> np.ndarray:
    """The feature rows of ``items`` (with their raw source scores ``raw``) for ``ctx``."""
    out = np.zeros((items.shape[0], N_FEATURES))
    for name in _SCALED:
        top = scales.top[name]
        if top > 0:
            out[:, FEATURE[name]] = raw[:, SOURCE[name]] / top
    if scales.mf_span > 0:
        out[:, FEATURE["mf"]] = np.clip(
            (raw[:, SOURCE["mf"]] - scales.mf_low) / scales.mf_span, 0, 1
        )
    for name in ("popularity", "genre_popularity", "segment_popularity"):
        out[:, FEATURE[name]] = raw[:, SOURCE[name]]
    if ctx.recent_genres.size:
        primary = catalog.genres[items, 0]
        share = (primary[:, None] == ctx.recent_genres[None, :]).mean(axis=1)
        out[:, FEATURE["genre_recent"]] = np.where(primary >= 0, share, 0.0)
    if ctx.taste is not None:
        cosines = taste_cosines(ctx.taste, catalog.content[items])
        out[:, FEATURE["content"]] = cosines[:, 0]
        out[:, FEATURE["content_recent"]] = cosines[:, 1]
    out[:, FEATURE["cf_x_content"]] = out[:, FEATURE["cf"]] * out[:, FEATURE["content"]]
    out[:, FEATURE["blend"]] = sum(weight * out[:, FEATURE[name]] for name, weight in blend.items())
    out[:, FEATURE["item_log_count"] : FEATURE["item_year"] + 1] = catalog.stats[items]
    out[:, FEATURE["user_log_count"]] = ctx.log_count
    out[:, FEATURE["user_mean_rating"]] = ctx.mean_rating
    out[:, FEATURE["user_gap"]] = ctx.gap
    out[:, FEATURE["gap_x_popularity"]] = ctx.gap * out[:, FEATURE["popularity"]]
    out[:, FEATURE["gap_x_cf"]] = ctx.gap * out[:, FEATURE["cf"]]
    out[:, FEATURE["mf_x_fresh"]] = out[:, FEATURE["mf"]] * out[:, FEATURE["item_is_fresh"]]
    return out


def with_gap(row: np.ndarray, gap: float) -> np.ndarray:
    """A copy of a feature row as scored at another moment (only the session gap moves)."""
    out = row.copy()
    out[FEATURE["user_gap"]] = gap
    out[FEATURE["gap_x_popularity"]] = gap * out[FEATURE["popularity"]]
    out[FEATURE["gap_x_cf"]] = gap * out[FEATURE["cf"]]
    return out
