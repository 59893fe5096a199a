"""The one place that names the multi-task model's candidate sources and feature columns.

Retrieval fills one score column per source (:data:`SOURCES`) for every
candidate of a user's pool; :mod:`stream.multitask.features` turns them, with
user and item statistics, into the shared feature rows that every task head
reads (:data:`FEATURE_NAMES`). Both read their column numbers from here.
"""

from __future__ import annotations

#: Candidate sources, in the order of the pool's score columns.
SOURCES = (
    "cf",  # neighbours of the user's recency-weighted recent items (item-based CF)
    "cf_recent",  # the same over the last few items only (sharp recency)
    "mf",  # items nearest the user's MF embedding
    "ucf",  # recent items of users who engaged with the same recent items
    "popularity",  # popular now, overall
    "genre_popularity",  # popular now in the genres the user is engaging with
    "segment_popularity",  # popular now among users of the same gender and age band
    "fresh",  # new items with little history, by content affinity
)
SOURCE = {name: column for column, name in enumerate(SOURCES)}

#: Columns of the shared feature row of a (user, candidate) pair.
FEATURE_NAMES = [
    "cf",  # item-CF score, scaled by the pool's largest
    "cf_recent",  # item-CF over the last few items, scaled likewise
    "mf",  # MF score, min-max scaled over the pool
    "ucf",  # user-based CF score, scaled by the pool's largest
    "popularity",  # decayed popularity relative to the top item
    "genre_popularity",  # decayed popularity relative to the top item of its genre
    "segment_popularity",  # popularity within the user's segment, relative to its top
    "genre_recent",  # share of the user's last few items in the candidate's genre
    "genre_latest",  # the candidate's genre is that of the user's latest item (a session's topic)
    "latest_genre_popularity",  # genre_popularity where genre_latest, else 0
    "content",  # cosine of the user's slow content profile and the item's content
    "content_recent",  # the same with the fast profile
    "cf_x_content",  # collaborative and content evidence agreeing
    "blend",  # the retrieval blend that chose the pool
    "item_log_count",  # how much evidence the item has
    "item_is_fresh",  # fewer than fresh_threshold engagements
    "item_mean_rating",  # centred; 0 when unknown
    "item_log_price",  # 0 when the catalog has no price
    "item_year",  # (year - 1990) / 30; 0 when unknown
    "user_log_count",  # how much evidence the user has
    "user_mean_rating",  # centred; 0 when unknown
    "user_gap",  # log time since the user's previous event: a new session or not
    "gap_x_popularity",  # after a break, what is popular now matters more
    "gap_x_cf",  # within a session, what the user just did matters more
    "mf_x_fresh",  # MF of a new item is mostly its content prior
]
FEATURE = {name: column for column, name in enumerate(FEATURE_NAMES)}
N_FEATURES = len(FEATURE_NAMES)

#: Item statistics kept per item row, in this order (feature columns of the same name).
ITEM_STATS = ("item_log_count", "item_is_fresh", "item_mean_rating", "item_log_price", "item_year")


def centred_rating(total, n):  # noqa: ANN001, ANN201 - floats or arrays alike
    """Mean rating shrunk towards 3.5 by two pseudo-ratings, centred and scaled to ~[-1, 1]."""
    return ((total + 3.5 * 2.0) / (n + 2.0) - 3.5) / 1.5
