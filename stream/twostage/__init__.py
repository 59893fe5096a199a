"""The two-stage recommender: retrieval from bounded sources, then ranking by task heads.

Parts, each owning its state (``docs/catalog_scale.md``):

- item side: :mod:`~stream.twostage.catalog` (ids, content, statistics),
  :mod:`~stream.twostage.neighbours` (bounded item-CF lists),
  :mod:`~stream.twostage.engagers` (recent engagers per item),
  :mod:`~stream.twostage.popular` (popular-now lists),
  :mod:`~stream.twostage.coldstart` (content and segment priors);
- user side: :mod:`~stream.twostage.users`;
- :mod:`~stream.twostage.retrieval` gathers a pool, :mod:`~stream.twostage.features`
  builds its feature rows (columns named in :mod:`~stream.twostage.layout`),
  :mod:`~stream.twostage.lists` turns a scored pool into a list;
- :mod:`~stream.twostage.model` holds them and passes each what it needs.
"""

from stream.twostage.layout import FEATURE_NAMES, SOURCES
from stream.twostage.model import TwoStageRecommender

__all__ = ["FEATURE_NAMES", "SOURCES", "TwoStageRecommender"]
