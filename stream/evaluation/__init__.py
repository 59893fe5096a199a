"""Offline evaluation: the prequential loop and the measures it reports.

- :mod:`stream.evaluation.prequential`: the test-then-learn loop,
  :class:`PrequentialResult`, and the accuracy/diversity sweep.
- :mod:`stream.evaluation.metrics`: exact AUC, log-loss, and the
  accumulators for tasks (:class:`TaskScorer`) and lists (:class:`ListQuality`).
"""

from stream.evaluation.metrics import ListQuality, TaskScorer, log_loss, roc_auc
from stream.evaluation.prequential import (
    LIST_SAMPLE_EVERY,
    ROLLING_WINDOW,
    SCORED_EVENT_TYPES,
    EvaluationError,
    PrequentialResult,
    TradeoffUnsupported,
    blinded,
    evaluate_tradeoff,
    prequential,
)

__all__ = [
    "LIST_SAMPLE_EVERY",
    "ROLLING_WINDOW",
    "SCORED_EVENT_TYPES",
    "EvaluationError",
    "ListQuality",
    "PrequentialResult",
    "TaskScorer",
    "TradeoffUnsupported",
    "blinded",
    "evaluate_tradeoff",
    "log_loss",
    "prequential",
    "roc_auc",
]
