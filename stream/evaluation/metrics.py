"""The evaluator's measures: exact AUC, log-loss, and the accumulators the loop feeds.

The loop calls :class:`TaskScorer` and :class:`ListQuality` once per event, so
both only append to lists or bump counters there; everything expensive (ranks,
sums, windows) happens once, when the summary is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from stream.events import Item

#: Probabilities are clipped to [EPS, 1 - EPS] before the log-loss takes their log.
LOGLOSS_EPS = 1e-15


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (ascending), ties given the mean of the ranks they span.

    >>> average_ranks(np.array([0.3, 0.1, 0.3, 0.2])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    n = values.shape[0]
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    # A tie group occupying sorted slots start..end-1 holds ranks start+1..end.
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_auc(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float | None:
    """Exact area under the ROC curve (Mann-Whitney U), ties counted as half.

    Returns None unless both classes are present: with one class there is no
    pair to order, and any number would be made up.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([1, 1], [0.2, 0.9]) is None
    True
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"{y.shape[0]} labels but {s.shape[0]} scores")
    if np.isnan(s).any():
        raise ValueError("a prediction is NaN")
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(average_ranks(s)[y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def log_loss(labels: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray) -> float:
    """Mean binary cross-entropy in nats, probabilities clipped to ``[EPS, 1 - EPS]``.

    >>> round(log_loss([1, 0], [0.5, 0.5]), 6)
    0.693147
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), LOGLOSS_EPS, 1.0 - LOGLOSS_EPS)
    if y.shape[0] == 0:
        raise ValueError("log-loss of no predictions")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def window_bins(positions: np.ndarray, window: int, n_events: int) -> tuple[np.ndarray, int]:
    """Window index (0-based) of each 1-based stream position, and the number of windows."""
    return (positions - 1) // window, max(1, math.ceil(n_events / window))


class TaskScorer:
    """Per-task labels and the predictions made for them before learning.

    Feed it with :meth:`add` for each labelled event; read AUC, log-loss,
    RMSE and rolling AUC afterwards. A task the model gave no prediction for
    is counted in ``unpredicted`` and gets no figure.

    >>> scorer = TaskScorer()
    >>> for n, (label, p) in enumerate([(1, 0.9), (0, 0.2), (1, 0.4), (0, 0.6)], 1):
    ...     scorer.add(n, {"click": label}, {"click": p})
    >>> scorer.auc()
    {'click': 0.75}
    """

    def __init__(self) -> None:
        # task -> (positions, labels, predictions), parallel lists
        self._columns: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self.labelled: dict[str, int] = {}
        self.positives: dict[str, int] = {}
        self.unpredicted: dict[str, int] = {}
        self._squared_error = 0.0
        self._rated = 0

    def add(
        self, position: int, labels: Mapping[str, int], predictions: Mapping[str, float]
    ) -> None:
        for task, label in labels.items():
            self.labelled[task] = self.labelled.get(task, 0) + 1
            self.positives[task] = self.positives.get(task, 0) + label
            predicted = predictions.get(task)
            if predicted is None:
                self.unpredicted[task] = self.unpredicted.get(task, 0) + 1
                continue
            column = self._columns.get(task)
            if column is None:
                column = self._columns[task] = ([], [], [])
            column[0].append(position)
            column[1].append(label)
            column[2].append(float(predicted))

    def add_rating(self, target: float, predicted: float) -> None:
        self._squared_error += (float(predicted) - target) ** 2
        self._rated += 1

    def _arrays(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        positions, labels, predictions = self._columns[task]
        return np.asarray(positions), np.asarray(labels), np.asarray(predictions)

    def auc(self) -> dict[str, float]:
        """AUC per task that has predictions for both classes."""
        out = {}
        for task in sorted(self._columns):
            _, labels, predictions = self._arrays(task)
            value = roc_auc(labels, predictions)
            if value is not None:
                out[task] = value
        return out

    def logloss(self) -> dict[str, float]:
        return {
            task: log_loss(self._arrays(task)[1], self._arrays(task)[2])
            for task in sorted(self._columns)
        }

    def rmse(self) -> float | None:
        return math.sqrt(self._squared_error / self._rated) if self._rated else None

    @property
    def rated(self) -> int:
        return self._rated

    def rolling_auc(self, window: int, n_events: int) -> dict[str, list[float | None]]:
        """AUC per task in each window of ``window`` stream positions (None: one class only)."""
        out: dict[str, list[float | None]] = {}
        for task in sorted(self._columns):
            positions, labels, predictions = self._arrays(task)
            bins, n_windows = window_bins(positions, window, n_events)
            # Positions only grow, so each window is one contiguous slice.
            edges = np.searchsorted(bins, np.arange(n_windows + 1))
            out[task] = [
                roc_auc(labels[a:b], predictions[a:b])
                for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
        return out

    def describe(self) -> dict[str, dict[str, float | int]]:
        """Per task: events labelled, share positive, and how many had a prediction."""
        return {
            task: {
                "labelled": self.labelled[task],
                "positive_rate": self.positives[task] / self.labelled[task],
                "predicted": self.labelled[task] - self.unpredicted.get(task, 0),
            }
            for task in sorted(self.labelled)
        }


def genre_masks(catalog: Iterable[Item]) -> dict[str, int]:
    """Each catalog item's genres as a bit mask, one bit per genre name (no genres: left out)."""
    bits: dict[str, int] = {}
    masks: dict[str, int] = {}
    for item in catalog:
        genres = item.features.get("genres")
        if not genres:
            continue
        mask = 0
        for genre in genres:
            mask |= 1 << bits.setdefault(genre, len(bits))
        masks[item.item_id] = mask
    return masks


def intra_list_distance(item_ids: Sequence[str], masks: Mapping[str, int]) -> float | None:
    """Mean over pairs of ``1 - Jaccard(genres)``; pairs with an item of unknown genres left out.

    >>> masks = {"a": 0b011, "b": 0b110, "c": 0b011}
    >>> round(intra_list_distance(["a", "b", "c"], masks), 4)    # 2/3, 0, 2/3
    0.4444
    >>> intra_list_distance(["a", "zzz"], masks) is None
    True
    """
    known = [masks[i] for i in item_ids if i in masks]
    total, pairs = 0.0, 0
    for n, a in enumerate(known):
        for b in known[n + 1 :]:
            total += 1.0 - (a & b).bit_count() / (a | b).bit_count()
            pairs += 1
    return total / pairs if pairs else None


class ListQuality:
    """What the lists look like beyond hits: coverage, diversity, novelty.

    Parameters
    ----------
    catalog
        Catalog items; their ``features["genres"]`` define the content
        distance for diversity, and their ids count in coverage's denominator.

    Coverage counts every list; diversity and novelty are means over the
    lists passed with ``sampled=True`` (the loop samples every Nth one:
    computing them is what costs).

    Novelty of an item is ``-log2`` of its share of the interactions seen so
    far; an item no one has interacted with yet counts as one interaction,
    so its novelty stays finite.
    """

    def __init__(self, catalog: Iterable[Item] = ()) -> None:
        catalog = list(catalog)
        self._masks = genre_masks(catalog)
        self._catalog_ids = {item.item_id for item in catalog}
        self.recommended: set[str] = set()
        self._counts: dict[str, int] = {}
        self._interactions = 0
        self._diversity_sum = 0.0
        self._diversity_lists = 0
        self._novelty_sum = 0.0
        self._novelty_lists = 0
        #: Sampled lists' entries the user had already interacted with (the contract says none).
        self.seen_recommended = 0

    def interaction(self, item_id: str) -> None:
        """Count one interaction with ``item_id`` (after the event's list was judged)."""
        self._counts[item_id] = self._counts.get(item_id, 0) + 1
        self._interactions += 1

    def observe(self, item_ids: list[str]) -> None:
        self.recommended.update(item_ids)

    def observe_sampled(self, item_ids: list[str], user_seen: set[str]) -> None:
        self.recommended.update(item_ids)
        if not item_ids:
            return
        self.seen_recommended += sum(1 for i in item_ids if i in user_seen)
        distance = intra_list_distance(item_ids, self._masks)
        if distance is not None:
            self._diversity_sum += distance
            self._diversity_lists += 1
        total = max(self._interactions, 1)
        counts = self._counts
        self._novelty_sum += sum(
            -math.log2(max(counts.get(i, 0), 1) / total) for i in item_ids
        ) / len(item_ids)
        self._novelty_lists += 1

    def coverage(self) -> float:
        """Distinct items ever recommended / items in the catalog or interacted with."""
        universe = len(self._catalog_ids | self._counts.keys())
        return len(self.recommended) / universe if universe else 0.0

    def diversity(self) -> float | None:
        return self._diversity_sum / self._diversity_lists if self._diversity_lists else None

    def novelty(self) -> float | None:
        return self._novelty_sum / self._novelty_lists if self._novelty_lists else None

    def summary(self) -> dict[str, Any]:
        return {
            "coverage": self.coverage(),
            "diversity": self.diversity(),
            "novelty": self.novelty(),
            "lists_sampled": self._novelty_lists,
            "seen_recommended": self.seen_recommended,
        }
