"""The models the service can run, by name; the contract tests run against each."""

from __future__ import annotations

from typing import Any

from stream.hybrid import HybridRecommender
from stream.model import Recommender

MODELS: dict[str, type[Recommender]] = {
    "hybrid": HybridRecommender,
}

DEFAULT_MODEL = "hybrid"


def build_model(name: str = DEFAULT_MODEL, **params: Any) -> Recommender:
    """A fresh model of the named class with its documented defaults (or ``params``)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return cls(**params)
