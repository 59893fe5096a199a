"""The models the service can run, by name; the contract tests run against each.

``MODELS`` are production models. ``BASELINES`` are the anchors the offline
evaluator compares them with (``streamrec evaluate --baselines``);
:func:`build_model` builds either by name.
"""

from __future__ import annotations

from typing import Any

from stream.baselines import (
    DecayedPopularityRecommender,
    GenrePopularityRecommender,
    ItemCFRecommender,
    PopularityRecommender,
    RecencyItemCFRecommender,
    RiverBiasedMF,
)
from stream.hybrid import HybridRecommender
from stream.model import Recommender
from stream.multitask import MultiTaskRecommender

MODELS: dict[str, type[Recommender]] = {
    "hybrid": HybridRecommender,
    "multitask": MultiTaskRecommender,
}

#: Anchor models, in the order reports list them.
BASELINES: dict[str, type[Recommender]] = {
    "popularity": PopularityRecommender,
    "decayed-popularity": DecayedPopularityRecommender,
    "genre-popularity": GenrePopularityRecommender,
    "river-biasedmf": RiverBiasedMF,
    "itemcf": ItemCFRecommender,
    "itemcf-recency": RecencyItemCFRecommender,
}

DEFAULT_MODEL = "multitask"


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name`` in ``MODELS`` or ``BASELINES``."""
    cls = MODELS.get(name) or BASELINES.get(name)
    if cls is None:
        known = sorted(MODELS) + sorted(BASELINES)
        raise ValueError(f"unknown model {name!r}; known: {known}")
    return cls


def build_model(name: str = DEFAULT_MODEL, **params: Any) -> Recommender:
    """A fresh model of the named class with its documented defaults (or ``params``)."""
    return model_class(name)(**params)
