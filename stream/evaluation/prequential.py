"""Prequential (test-then-learn) evaluation over a stream of events in time order.

For every event, in this order:

1. catalog items and user profiles whose timestamp has come are handed to
   the model (as the catalog topic would have delivered them by then);
2. if the event is the user's first interaction with its item, the model
   ranks for the user (seen items excluded) and the evaluator records where
   the item landed: HR, NDCG and MRR at ``k``;
3. if the event carries task labels or a rating, the model predicts the
   tasks for the event's (user, item), shown only the event with its outcome
   hidden (``event_type`` and ``value`` masked): AUC, log-loss, RMSE;
4. only then does the model learn the event.

Predicting before learning is what keeps the figures honest: the model is
never asked about something it has already been told. Repeat interactions
(a click after a view of the same item, say) are not ranked: a list that
by contract excludes seen items can never contain them, so they would only
count as misses that say nothing about the model.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.errors import StreamError
from stream.evaluation.metrics import ListQuality, TaskScorer, window_bins
from stream.evaluation.slices import EventSlices
from stream.events import DEFAULT_DOMAIN, Event, Item, UserProfile
from stream.model import Recommender
from stream.tasks import FUNNEL, outcome_labels, rating_target

#: Events whose type says nothing about what to recommend next are learned but not ranked.
SCORED_EVENT_TYPES = frozenset({"view", "click", "add_to_cart", "purchase", "rating"})
#: Diversity, novelty and the seen-item check are computed on every Nth ranked
#: event (10: ~10,000 lists on ML-100K, far more than the figures need, at a
#: tenth of the cost of judging every list).
LIST_SAMPLE_EVERY = 10
#: Rolling curves use windows of this many events.
ROLLING_WINDOW = 1000


class EvaluationError(StreamError):
    """An evaluation cannot be run as asked."""


class TradeoffUnsupported(EvaluationError):
    """The model has no ``diversity`` parameter, so there is no trade-off to sweep."""


@dataclass
class PrequentialResult:
    """Everything one prequential pass measured; :meth:`summary` is the JSON form."""

    k: int = 10
    window: int = ROLLING_WINDOW
    events: int = 0
    scored: int = 0
    hits: int = 0
    repeats: int = 0
    seconds: float = 0.0
    tasks: TaskScorer = field(default_factory=TaskScorer)
    lists: ListQuality = field(default_factory=ListQuality)
    #: HR@k on cold items, cold users and users new to a domain; cold-item coverage.
    slices: EventSlices = field(default_factory=EventSlices)
    #: 1-based stream position of each ranked event, and where its item landed (0: not in top k).
    positions: list[int] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.scored if self.scored else 0.0

    def _gains(self) -> tuple[np.ndarray, np.ndarray]:
        ranks = np.asarray(self.ranks, dtype=np.float64)
        hit = ranks > 0
        ndcg = np.zeros_like(ranks)
        rr = np.zeros_like(ranks)
        ndcg[hit] = 1.0 / np.log2(ranks[hit] + 1.0)
        rr[hit] = 1.0 / ranks[hit]
        return ndcg, rr

    @property
    def ndcg(self) -> float:
        return float(self._gains()[0].mean()) if self.scored else 0.0

    @property
    def mrr(self) -> float:
        return float(self._gains()[1].mean()) if self.scored else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def rolling(self) -> dict[str, Any]:
        """HR@k and each task's AUC per window of ``window`` events (None: nothing to measure)."""
        n_windows = max(1, math.ceil(self.events / self.window))
        hr: list[float | None] = [None] * n_windows
        if self.scored:
            bins, _ = window_bins(np.asarray(self.positions), self.window, self.events)
            ranked = np.bincount(bins, minlength=n_windows)
            hits = np.bincount(bins, weights=np.asarray(self.ranks) > 0, minlength=n_windows)
            hr = [float(h / n) if n else None for h, n in zip(hits, ranked, strict=True)]
        ends = [min((w + 1) * self.window, self.events) for w in range(n_windows)]
        return {
            "window": self.window,
            "events": ends,
            f"hr@{self.k}": hr,
            "auc": self.tasks.rolling_auc(self.window, self.events),
        }

    def summary(self) -> dict[str, Any]:
        k = self.k
        return {
            "events": self.events,
            "scored": self.scored,
            "repeats_not_ranked": self.repeats,
            f"hr@{k}": self.hit_rate,
            f"ndcg@{k}": self.ndcg,
            f"mrr@{k}": self.mrr,
            "auc": self.tasks.auc(),
            "logloss": self.tasks.logloss(),
            "rmse": self.tasks.rmse(),
            "tasks": self.tasks.describe(),
            **self.lists.summary(),
            **self.slices.summary(k),
            "events_per_second": self.events_per_second,
            "seconds": self.seconds,
            "rolling": self.rolling(),
        }


def blinded(event: Event) -> Event:
    """The event as a predictor may see it: who, what, when and where, but not what happened.

    A funnel event becomes a ``view`` (every funnel step starts as one) and a
    rating or dislike a ``rating`` without stars, so the labels cannot be read
    off the question.
    """
    masked = "view" if event.event_type in FUNNEL else "rating"
    return Event(
        event.user_id,
        event.item_id,
        masked,
        event.timestamp,
        None,
        event.event_id,
        event.domain,
        event.context,
    )


class _SideRecords:
    """Catalog items and profiles in time order, handed to the model when their time comes."""

    def __init__(self, catalog: Sequence[Item], profiles: Sequence[UserProfile]) -> None:
        records: list[tuple[float, int, Item | UserProfile]] = [
            (item.timestamp, 0, item) for item in catalog
        ]
        records += [(profile.timestamp, 1, profile) for profile in profiles]
        records.sort(key=lambda r: (r[0], r[1]))  # stable: file order within a timestamp
        self._records = records
        self._next = 0
        self.next_time = records[0][0] if records else math.inf

    def feed_until(self, model: Recommender, timestamp: float) -> None:
        records = self._records
        while self._next < len(records) and records[self._next][0] <= timestamp:
            record = records[self._next][2]
            if isinstance(record, Item):
                model.add_item(record)
            else:
                model.add_profile(record)
            self._next += 1
        self.next_time = records[self._next][0] if self._next < len(records) else math.inf


def prequential(
    model: Recommender,
    events: Sequence[Event],
    *,
    k: int = 10,
    catalog: Sequence[Item] = (),
    profiles: Sequence[UserProfile] = (),
    rolling_every: int = ROLLING_WINDOW,
    list_sample_every: int = LIST_SAMPLE_EVERY,
    progress: Callable[[int, PrequentialResult], None] | None = None,
    progress_every: int = 1000,
) -> PrequentialResult:
    """Test-then-learn over ``events`` (see the module for the order of steps).

    Parameters
    ----------
    model
        A fresh or warm model; it learns every event.
    events
        Contract events in time order.
    k
        List length; ranks are 1-based and an item outside the top ``k``
        scores 0 for HR, NDCG and MRR.
    catalog, profiles
        Side records, handed to the model as soon as the stream's time
        reaches their ``timestamp``; the catalog's genres also define the
        diversity measure.
    rolling_every
        Window, in events, of the rolling curves.
    list_sample_every
        Diversity and novelty are measured on every Nth ranked list.
    progress, progress_every
        ``progress(position, result)`` every ``progress_every`` events
        (``result.seconds`` up to date).
    """
    if k < 1 or rolling_every < 1 or list_sample_every < 1 or progress_every < 1:
        raise EvaluationError("k, rolling_every, list_sample_every and progress_every must be >= 1")
    result = PrequentialResult(
        k=k, window=rolling_every, lists=ListQuality(catalog), slices=EventSlices(catalog)
    )
    tasks, lists, slices = result.tasks, result.lists, result.slices
    # A model that takes ``domain`` ranks for the domain the user is in (the
    # section of the site asking for the list); single-domain streams pass none.
    scoped = "domain" in inspect.signature(model.recommend).parameters
    if events:
        slices.start(events[0].timestamp)
    positions, ranks = result.positions, result.ranks
    side = _SideRecords(catalog, profiles)
    # With hindsight: a view's labels are its outcome (see stream.tasks).
    all_labels = outcome_labels(events)
    seen: dict[str, set[str]] = {}
    started = time.perf_counter()
    for position, event in enumerate(events, start=1):
        if side.next_time <= event.timestamp:
            side.feed_until(model, event.timestamp)
        item = event.item_id
        if event.event_type == "forget_user":
            seen.pop(event.user_id, None)
            slices.forget(event.user_id)
        elif item is not None:
            user_seen = seen.get(event.user_id)
            if user_seen is None:
                user_seen = seen[event.user_id] = set()
            if event.event_type in SCORED_EVENT_TYPES:
                if item in user_seen:
                    result.repeats += 1
                else:
                    flags = slices.before_rank(event)
                    domain = event.domain if scoped and event.domain != DEFAULT_DOMAIN else None
                    ids = model.recommend_ids(event.user_id, k, domain=domain)
                    rank = ids.index(item) + 1 if item in ids else 0
                    slices.ranked(flags, rank > 0, ids)
                    result.scored += 1
                    result.hits += rank > 0
                    positions.append(position)
                    ranks.append(rank)
                    if result.scored % list_sample_every == 0:
                        lists.observe_sampled(ids, user_seen)
                    else:
                        lists.observe(ids)
            labels = all_labels[position - 1]
            target = rating_target(event)
            if labels or target is not None:
                predictions = model.predict_tasks(blinded(event))
                if labels:
                    tasks.add(position, labels, predictions)
                if target is not None and "rating" in predictions:
                    tasks.add_rating(target, predictions["rating"])
            lists.interaction(item)
            slices.after_event(event)
            user_seen.add(item)
        # Learn last: everything above was asked before the model saw this event.
        model.learn_one(event)
        result.events = position
        if progress is not None and position % progress_every == 0:
            result.seconds = time.perf_counter() - started
            progress(position, result)
    result.seconds = time.perf_counter() - started
    return result


def accepts_diversity(model_factory: Callable[..., Recommender]) -> bool | None:
    """Whether the factory's signature takes ``diversity`` (None: it has ``**kwargs``, unsure)."""
    try:
        parameters = inspect.signature(model_factory).parameters
    except (TypeError, ValueError):
        return None
    if "diversity" in parameters:
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None  # **params: only a call can tell
    return False


def evaluate_tradeoff(
    model_factory: Callable[..., Recommender],
    events: Sequence[Event],
    weights: Sequence[float],
    *,
    k: int = 10,
    catalog: Sequence[Item] = (),
    profiles: Sequence[UserProfile] = (),
    progress: Callable[[float, int, PrequentialResult], None] | None = None,
) -> list[dict[str, float | None]]:
    """Accuracy against diversity: one prequential pass per ``model_factory(diversity=w)``.

    Returns
    -------
    list of dict
        ``{"diversity_weight", f"hr@{k}", "diversity"}`` per weight, in order.

    Raises
    ------
    TradeoffUnsupported
        If the factory does not take a ``diversity`` argument.
    """
    if accepts_diversity(model_factory) is False:
        raise TradeoffUnsupported(_no_knob_message(model_factory))
    points: list[dict[str, float | None]] = []
    for weight in weights:
        try:
            model = model_factory(diversity=weight)
        except TypeError as exc:
            if "diversity" in str(exc):
                raise TradeoffUnsupported(f"{_no_knob_message(model_factory)} ({exc})") from None
            raise
        report = None if progress is None else (lambda p, r, w=weight: progress(w, p, r))
        result = prequential(
            model, events, k=k, catalog=catalog, profiles=profiles, progress=report
        )
        points.append(
            {
                "diversity_weight": float(weight),
                f"hr@{k}": result.hit_rate,
                "diversity": result.lists.diversity(),
            }
        )
    return points


def _no_knob_message(model_factory: Callable[..., Recommender]) -> str:
    target = getattr(model_factory, "func", model_factory)  # see through functools.partial
    name = getattr(target, "__name__", None) or repr(model_factory)
    return (
        f"{name} takes no 'diversity' argument, so there is no accuracy/diversity "
        "trade-off to sweep; skipped"
    )
