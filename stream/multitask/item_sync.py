"""What a model changed on the item side, handed out as records that other models merge.

Several workers each learn the events of their own users (a partition of the
input each). Item knowledge should still come from everybody's events, so
each model records what its own events changed on the item side and, every
sync interval, hands the changes out as records (the runtime publishes them to
``<group>.item-state``); every other model merges what the others wrote.

How each kind of item state merges:

- **Counts** (engagements and ratings per item, the neighbour lists' pair
  weights and norms, popularity overall, per genre and per segment): summed,
  and exactly, because a record carries only its writer's own changes since
  its previous record, never what it merged from others. Popularity is decayed
  to the record's time by each scope's half-life, so the sum is exact too.
- **Embeddings and head weights** (MF item vectors and biases, the task
  heads): delta-sum, as a parameter server would apply them: every copy adds
  the SGD steps the others took to its own, so each copy ends up with the sum
  of all steps, as a single model learning every event would (up to the
  interval's staleness). Item vectors are seeded by the item's id
  (:meth:`~stream.multitask.model.MultiTaskRecommender.merge_item_changes`),
  so every copy of an item starts from the same point.
- **Local only**: the recent engagers of an item (they name users of the
  writer's own partition), the exploration arms and the cold-start maps
  (each model refits them from its merged vectors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.heads import TaskHeads
from stream.multitask.catalog import ItemCatalog
from stream.signals.factorization import OnlineMF

#: Version of the records' layout; a record of another version is refused.
RECORD_FORMAT = 1


@dataclass(slots=True)
class _ItemChange:
    """One item's changes since the last records, popularity as of ``at``."""

    at: float
    events: float = 0.0
    rating_sum: float = 0.0
    rating_n: float = 0.0
    total: float = 0.0  # the neighbour lists' norm (engagement weight)
    pairs: dict[int, float] = field(default_factory=dict)
    overall: float = 0.0
    in_genre: float = 0.0
    segments: dict[str, float] = field(default_factory=dict)


class ItemChanges:
    """A model's own item-side changes since it last handed them out.

    Parameters
    ----------
    half_life, genre_half_life, segment_half_life
        The popular-now scopes' half-lives: an engagement's weight is decayed
        by each to the record's time.
    """

    def __init__(self, half_life: float, genre_half_life: float, segment_half_life: float) -> None:
        self._rates = (
            math.log(2.0) / half_life,
            math.log(2.0) / genre_half_life,
            math.log(2.0) / segment_half_life,
        )
        self._items: dict[int, _ItemChange] = {}
        # MF rows as they were before this model's own first step since the last
        # records (plus what it merged since): own change = now - before.
        self._mf_before: dict[int, tuple[np.ndarray, float]] = {}
        self._heads_before: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def engaged(
        self, item: int, weight: float, timestamp: float, rating: float | None,
        window: np.ndarray, amounts: np.ndarray, segment: str | None,
    ) -> None:  # fmt: skip
        """One event of this model's: what it added to the item's counts and pair lists."""
        change = self._change(item, timestamp)
        change.events += 1.0
        if rating is not None:
            change.rating_sum += rating
            change.rating_n += 1.0
        if weight <= 0:
            return  # a dislike adds no pairs and no popularity
        change.total += weight
        overall_rate, genre_rate, segment_rate = self._rates
        age = timestamp - change.at
        change.overall += weight * math.exp(overall_rate * age)
        change.in_genre += weight * math.exp(genre_rate * age)
        if segment is not None:
            change.segments[segment] = change.segments.get(segment, 0.0) + weight * math.exp(
                segment_rate * age
            )
        for other, amount in zip(window.tolist(), amounts.tolist(), strict=True):
            if amount > 0:
                # The pair adds to both items' lists; each list travels in its item's record.
                change.pairs[other] = change.pairs.get(other, 0.0) + amount
                reverse = self._change(other, timestamp)
                reverse.pairs[item] = reverse.pairs.get(item, 0.0) + amount

    def _change(self, item: int, timestamp: float) -> _ItemChange:
        change = self._items.get(item)
        if change is None:
            change = self._items[item] = _ItemChange(at=timestamp)
        return change

    def before_mf_step(self, rows: np.ndarray, mf: OnlineMF) -> None:
        """Remember the rows an MF step is about to change (first time since the last records)."""
        for row in rows.tolist():
            if row not in self._mf_before:
                self._mf_before[row] = mf.item_row(row)

    def merged_mf(self, row: int, vector: np.ndarray, bias: float) -> None:
        """Another model's step was added to ``row``: it is not this model's own change."""
        before = self._mf_before.get(row)
        if before is not None:
            self._mf_before[row] = (before[0] + vector, before[1] + bias)

    def merged_heads(
        self, weights: np.ndarray, intercepts: np.ndarray, learned: np.ndarray
    ) -> None:
        """Another model's head steps were added: not this model's own change."""
        if self._heads_before is not None:
            w, b, n = self._heads_before
            self._heads_before = (w + weights, b + intercepts, n + learned)

    def start_heads(self, heads: TaskHeads) -> None:
        """Take the heads' parameters now as the point own changes are measured from."""
        if self._heads_before is None:
            self._heads_before = heads.parameters()

    def take(self, catalog: ItemCatalog, mf: OnlineMF, heads: TaskHeads) -> list[dict[str, Any]]:
        """Records of every change since the last call, and start afresh.

        One record per changed item (``"item"``: its id), and one for the heads
        (``"heads"``) when they learned; plain lists and numbers, ready for msgpack.
        """
        records: list[dict[str, Any]] = []
        names = catalog.ids.externals
        for row in sorted(set(self._items) | set(self._mf_before)):
            record: dict[str, Any] = {"v": RECORD_FORMAT, "item": catalog.ids.external(row)}
            change = self._items.get(row)
            if change is not None:
                record.update(
                    at=change.at, events=change.events, rating_sum=change.rating_sum,
                    rating_n=change.rating_n, total=change.total, overall=change.overall,
                    in_genre=change.in_genre, segments=change.segments,
                )  # fmt: skip
                if change.pairs:
                    others = list(change.pairs)
                    record["pair_items"] = names(others)
                    weights = np.array([change.pairs[o] for o in others], dtype="<f4")
                    record["pair_weights"] = weights.tobytes()
            before = self._mf_before.get(row)
            if before is not None:
                vector, bias = mf.item_row(row)
                # float32 bytes: a third of msgpack's doubles, precision to spare for a step
                record["mf"] = (vector - before[0]).astype("<f4").tobytes()
                record["mf_bias"] = bias - before[1]
            records.append(record)
        self._items = {}
        self._mf_before = {}
        if self._heads_before is not None:
            now = heads.parameters()
            learned = now[2] - self._heads_before[2]
            if learned.any():
                records.append(
                    {
                        "v": RECORD_FORMAT,
                        "heads": (now[0] - self._heads_before[0]).tolist(),
                        "intercepts": (now[1] - self._heads_before[1]).tolist(),
                        "learned": learned.tolist(),
                    }
                )
            self._heads_before = now
        return records


def check_record(record: dict[str, Any]) -> None:
    """Refuse a record of another layout with a message that names both versions."""
    found = record.get("v") if isinstance(record, dict) else None
    if found != RECORD_FORMAT:
        raise ValueError(
            f"item-state record in format {found!r}; this version of streamrec reads "
            f"format {RECORD_FORMAT}"
        )
