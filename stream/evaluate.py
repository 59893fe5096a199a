"""Prequential (test-then-learn) evaluation over a stream of events in time order.

For every event: rank for the user first, with everything the user already
interacted with excluded; score where the event's item landed; only then
learn the event. Predicting before learning is what keeps the figure honest:
the model never sees the answer before it is asked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stream.events import Event
from stream.model import Recommender

#: Events whose type says nothing about what to recommend next are learned but not scored.
SCORED_EVENT_TYPES = frozenset({"view", "click", "add_to_cart", "purchase", "rating"})


@dataclass
class PrequentialResult:
    events: int = 0
    scored: int = 0
    hits: int = 0
    ndcg_sum: float = 0.0
    reciprocal_rank_sum: float = 0.0
    seconds: float = 0.0
    k: int = 10
    rolling: list[tuple[int, float]] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.scored if self.scored else 0.0

    @property
    def ndcg(self) -> float:
        return self.ndcg_sum / self.scored if self.scored else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_rank_sum / self.scored if self.scored else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, float | int]:
        k = self.k
        return {
            "events": self.events,
            "scored": self.scored,
            f"hr@{k}": round(self.hit_rate, 5),
            f"ndcg@{k}": round(self.ndcg, 5),
            f"mrr@{k}": round(self.mrr, 5),
            "events_per_second": round(self.events_per_second, 1),
        }


def prequential(
    model: Recommender,
    events: Sequence[Event],
    *,
    k: int = 10,
    rolling_every: int = 1000,
    progress: Callable[[int, PrequentialResult], None] | None = None,
) -> PrequentialResult:
    """Test-then-learn over ``events``; hit rate, NDCG and MRR at ``k``.

    Ranking positions are 1-based; an event's item that is not in the top
    ``k`` scores 0 for all three.
    """
    result = PrequentialResult(k=k)
    window_hits = window_scored = 0
    started = time.perf_counter()
    for position, event in enumerate(events, start=1):
        if event.event_type in SCORED_EVENT_TYPES and event.item_id is not None:
            ranked = model.recommend([event.user_id], k, with_reasons=False)[0]
            rank = next(
                (i for i, entry in enumerate(ranked, 1) if entry.item_id == event.item_id), 0
            )
            result.scored += 1
            window_scored += 1
            if rank:
                result.hits += 1
                window_hits += 1
                result.ndcg_sum += 1.0 / math.log2(rank + 1)
                result.reciprocal_rank_sum += 1.0 / rank
        model.learn_one(event)
        result.events += 1
        if position % rolling_every == 0:
            result.rolling.append((position, window_hits / window_scored if window_scored else 0.0))
            window_hits = window_scored = 0
            if progress is not None:
                result.seconds = time.perf_counter() - started
                progress(position, result)
    result.seconds = time.perf_counter() - started
    return result
