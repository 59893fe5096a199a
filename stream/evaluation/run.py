"""One evaluation run as ``streamrec evaluate`` does it: a model, optionally the anchors
and the diversity sweep, all on the same events; the result is one JSON-ready dict.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from stream.datasets import Dataset
from stream.evaluation.prequential import (
    PrequentialResult,
    TradeoffUnsupported,
    evaluate_tradeoff,
    prequential,
)
from stream.events import Event
from stream.model import Recommender

#: Diversity weights swept by ``--tradeoff``.
TRADEOFF_WEIGHTS = (0.0, 0.1, 0.2, 0.4, 0.8)

#: ``progress_for(label, total)`` gives the callback of one pass (or None).
ProgressFactory = Callable[[str, int], Callable[[int, PrequentialResult], None] | None]


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with floats rounded (NaN and inf as None): short, valid JSON."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return value


def takes_argument(cls: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def evaluate_one(
    model: Recommender,
    dataset: Dataset,
    events: Sequence[Event],
    *,
    k: int,
    progress: Callable[[int, PrequentialResult], None] | None = None,
) -> dict[str, Any]:
    """One prequential pass; the summary names the model's class and configuration."""
    result = prequential(
        model,
        events,
        k=k,
        catalog=dataset.items,
        profiles=dataset.profiles,
        progress=progress,
        progress_every=100,
    )
    return {"model_name": model.name, "model": model.version, **result.summary()}


def evaluate_run(
    dataset: Dataset,
    model_factory: Callable[..., Recommender],
    *,
    k: int = 10,
    limit: int | None = None,
    baselines: dict[str, Callable[[], Recommender]] | None = None,
    tradeoff_weights: Sequence[float] | None = None,
    progress_for: ProgressFactory | None = None,
) -> dict[str, Any]:
    """The model's summary, plus ``baselines`` and ``tradeoff`` when asked, on the same events.

    Parameters
    ----------
    dataset
        Events, catalog and profiles; the first ``limit`` events are used.
    model_factory
        Builds the model; called with ``diversity=w`` for the sweep.
    baselines
        Name -> factory of each anchor to run on the same events.
    tradeoff_weights
        Diversity weights to sweep; a model without the knob gets
        ``tradeoff_skipped`` with the reason instead of ``tradeoff``.
    progress_for
        Gives the progress callback of each pass from its label and length.
    """
    events = dataset.events[:limit] if limit is not None else dataset.events

    def progress(label: str) -> Callable[[int, PrequentialResult], None] | None:
        return progress_for(label, len(events)) if progress_for is not None else None

    model = model_factory()
    summary: dict[str, Any] = {"dataset": dataset.name, "k": k}
    summary.update(evaluate_one(model, dataset, events, k=k, progress=progress(model.name)))
    if baselines:
        summary["baselines"] = {
            name: evaluate_one(factory(), dataset, events, k=k, progress=progress(name))
            for name, factory in baselines.items()
        }
    if tradeoff_weights:
        try:
            summary["tradeoff"] = evaluate_tradeoff(
                model_factory,
                events,
                tradeoff_weights,
                k=k,
                catalog=dataset.items,
                profiles=dataset.profiles,
                progress=None
                if progress_for is None
                else _sweep_progress(progress_for, len(events)),
            )
        except TradeoffUnsupported as exc:
            summary["tradeoff_skipped"] = str(exc)
    return summary


def _sweep_progress(
    progress_for: ProgressFactory, total: int
) -> Callable[[float, int, PrequentialResult], None]:
    bars: dict[float, Callable[[int, PrequentialResult], None] | None] = {}

    def report(weight: float, position: int, result: PrequentialResult) -> None:
        if weight not in bars:
            bars[weight] = progress_for(f"diversity={weight:g}", total)
        bar = bars[weight]
        if bar is not None:
            bar(position, result)

    return report
