"""The multi-task recommender: retrieval from bounded sources, then ranking by task heads.

Parts, each owning its state (``docs/catalog_scale.md``):

- item side: :mod:`~stream.multitask.catalog` (ids, content, statistics),
  :mod:`~stream.multitask.neighbours` (bounded item-CF lists),
  :mod:`~stream.multitask.engagers` (recent engagers per item),
  :mod:`~stream.multitask.popular` (popular-now lists),
  :mod:`~stream.multitask.coldstart` (content and segment priors);
- user side: :mod:`~stream.multitask.users`;
- :mod:`~stream.multitask.retrieval` gathers a pool, :mod:`~stream.multitask.features`
  builds its feature rows (columns named in :mod:`~stream.multitask.layout`),
  :mod:`~stream.multitask.lists` turns a scored pool into a list;
- :mod:`~stream.multitask.model` holds them and passes each what it needs.
"""

from stream.multitask.layout import FEATURE_NAMES, SOURCES
from stream.multitask.model import MultiTaskRecommender

__all__ = ["FEATURE_NAMES", "SOURCES", "MultiTaskRecommender"]
