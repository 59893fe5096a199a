"""Prequential (test-then-learn) evaluation over a stream of events in time order.

For every event: rank for the user first, with everything the user already
interacted with excluded; score where the event's item landed; predict the
event's tasks from the event with its outcome hidden; only then learn the
event. Predicting before learning is what keeps the figure honest: the model
never sees the answer before it is asked.

The loop and its measures live in :mod:`stream.evaluation`; this module keeps
the short import path.
"""

from stream.evaluation import (
    LIST_SAMPLE_EVERY,
    ROLLING_WINDOW,
    SCORED_EVENT_TYPES,
    EvaluationError,
    PrequentialResult,
    TradeoffUnsupported,
    evaluate_tradeoff,
    prequential,
)

__all__ = [
    "LIST_SAMPLE_EVERY",
    "ROLLING_WINDOW",
    "SCORED_EVENT_TYPES",
    "EvaluationError",
    "PrequentialResult",
    "TradeoffUnsupported",
    "evaluate_tradeoff",
    "prequential",
]
