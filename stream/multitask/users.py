"""The user side: everything held per user, none of it sized by the catalog.

Per user: a ring of the last ``history_window`` interactions (item, weight,
kind), the items seen (for "never recommend again"), engagement counts, the
time of the last event, two decayed content-taste profiles, and a segment
from the user's profile. The MF embedding is a row of
:class:`~stream.signals.OnlineMF`'s user table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stream.entities import IdIndex, grown
from stream.kernels import decay_and_add
from stream.multitask.kernels import recency_weighted
from stream.multitask.layout import centred_rating
from stream.segments import segment_of

_EMPTY = np.zeros(0, dtype=np.int64)

#: Event types by the code the history ring stores.
KINDS = ("view", "click", "add_to_cart", "purchase", "rating", "dislike")
KIND = {name: code for code, name in enumerate(KINDS)}


class UserSide:
    """Users' histories, counters, taste profiles and segments.

    Parameters
    ----------
    history_window
        Interactions kept per user: what item-CF sums over and what the
        co-occurrence pairs an event with.
    content_width
        Width of the item content vectors the taste profiles follow.
    taste_decays
        Weight kept by each taste profile at each engagement (a slow one for
        what the user likes in general, a fast one for what they are into now).
    """

    def __init__(
        self,
        history_window: int = 30,
        content_width: int = 96,
        taste_decays: tuple[float, ...] = (0.95, 0.5),
    ) -> None:
        if history_window < 1:
            raise ValueError("history_window must be >= 1")
        self.history_window = history_window
        self.content_width = content_width
        self.taste_decays = taste_decays
        self._decays = np.array(taste_decays)
        self.ids = IdIndex()
        self.ring_items = np.full((0, history_window), -1, dtype=np.int64)
        self.ring_weights = np.zeros((0, history_window), dtype=np.float32)
        self.ring_kinds = np.zeros((0, history_window), dtype=np.int8)
        self.ring_counts = np.zeros(0, dtype=np.int64)
        self.last_time = np.zeros(0)
        self.events = np.zeros(0, dtype=np.float32)
        self.rating_sum = np.zeros(0, dtype=np.float32)
        self.rating_n = np.zeros(0, dtype=np.float32)
        self.taste = np.zeros((0, len(taste_decays), content_width), dtype=np.float32)
        self.has_taste = np.zeros(0, dtype=bool)
        self.seen: dict[int, set[int]] = {}
        # Profiles arrive on their own topic, possibly before the user's first event.
        self.segments: dict[str, str] = {}

    def _ensure(self, rows: int) -> None:
        if rows <= self.ring_counts.shape[0]:
            return
        self.ring_items = grown(self.ring_items, rows, fill=-1)
        self.ring_weights = grown(self.ring_weights, rows)
        self.ring_kinds = grown(self.ring_kinds, rows)
        self.ring_counts = grown(self.ring_counts, rows)
        self.last_time = grown(self.last_time, rows)
        self.events = grown(self.events, rows)
        self.rating_sum = grown(self.rating_sum, rows)
        self.rating_n = grown(self.rating_n, rows)
        self.taste = grown(self.taste, rows)
        self.has_taste = grown(self.has_taste, rows)

    def row(self, user_id: str) -> tuple[int, bool]:
        """The user's row, allocated on first sight; and whether it is new."""
        row = self.ids.get(user_id)
        if row is not None:
            return row, False
        row = self.ids.add(user_id)
        self._ensure(row + 1)
        self._clear(row)
        return row, True

    def _clear(self, row: int) -> None:
        self.ring_items[row] = -1
        self.ring_weights[row] = 0.0
        self.ring_kinds[row] = 0
        self.ring_counts[row] = 0
        self.last_time[row] = 0.0
        self.events[row] = self.rating_sum[row] = self.rating_n[row] = 0.0
        self.taste[row] = 0.0
        self.has_taste[row] = False
        self.seen.pop(row, None)

    # ------------------------------------------------------------------ learning

    def learn(
        self, row: int, item: int, weight: float, event_type: str, timestamp: float,
        rating: float | None, content: np.ndarray | None,
    ) -> None:  # fmt: skip
        """One interaction of the user, the newest."""
        at = int(self.ring_counts[row]) % self.history_window
        self.ring_items[row, at] = item
        self.ring_weights[row, at] = weight
        self.ring_kinds[row, at] = KIND.get(event_type, 0)
        self.ring_counts[row] += 1
        self.last_time[row] = max(self.last_time[row], timestamp)
        self.events[row] += 1
        if rating is not None:
            self.rating_sum[row] += rating
            self.rating_n[row] += 1
        self.seen.setdefault(row, set()).add(item)
        if weight > 0 and content is not None:
            decay_and_add(self.taste[row], self._decays, weight, content)
            self.has_taste[row] = True

    def set_profile(self, user_id: str, features: dict[str, Any]) -> None:
        segment = segment_of(features)
        if segment is None:
            self.segments.pop(user_id, None)
        else:
            self.segments[user_id] = segment

    # ------------------------------------------------------------------ reading

    def recent(self, row: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Items, weights and kinds of the newest ``n`` interactions, newest first."""
        count = int(self.ring_counts[row])
        take = min(count, self.history_window if n is None else n)
        if take == 0:
            return _EMPTY, np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int8)
        at = (count - 1 - np.arange(take)) % self.history_window
        return self.ring_items[row, at], self.ring_weights[row, at], self.ring_kinds[row, at]

    def recency_weighted(
        self, row: int, decay: float, n: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positively engaged recent items, each once, weighted ``weight * decay ** steps``.

        Newest first; an item engaged twice keeps its newest weight.
        """
        return recency_weighted(
            self.ring_items[row], self.ring_weights[row], int(self.ring_counts[row]), decay,
            self.history_window if n is None else n,
        )  # fmt: skip

    def seen_rows(self, row: int) -> np.ndarray:
        seen = self.seen.get(row)
        return _EMPTY if not seen else np.fromiter(seen, dtype=np.int64, count=len(seen))

    def gap(self, row: int | None, now: float) -> float:
        """log(1 + seconds since the user's last event) / 16 (1.0 for a user without one)."""
        if row is None or self.ring_counts[row] == 0:
            return 1.0
        return math.log1p(max(0.0, now - float(self.last_time[row]))) / 16.0

    def evidence(self, row: int | None) -> tuple[float, float]:
        """log-scaled event count and centred mean rating (0, 0 for an unknown user)."""
        if row is None:
            return 0.0, 0.0
        return (
            math.log1p(float(self.events[row])) / 8.0,
            float(centred_rating(float(self.rating_sum[row]), float(self.rating_n[row]))),
        )

    def segment(self, user_id: str | None) -> str | None:
        return None if user_id is None else self.segments.get(user_id)

    # ------------------------------------------------------------------ forgetting

    def forget(self, user_id: str) -> tuple[bool, int | None, np.ndarray]:
        """Erase the user: whether anything was held, their freed row (None without
        one) and the items they had seen (whose item-side lists name them)."""
        had_profile = self.segments.pop(user_id, None) is not None
        row = self.ids.remove(user_id)
        if row is None:
            return had_profile, None, _EMPTY
        seen = self.seen_rows(row)
        self._clear(row)
        return True, row, seen

    def forget_items(self, rows: np.ndarray) -> None:
        """Remove expired items from histories (their rows are about to be reused)."""
        if not rows.size:
            return
        gone = set(rows.tolist())
        for seen in self.seen.values():
            if not seen.isdisjoint(gone):
                seen -= gone
        mask = np.isin(self.ring_items, rows)
        self.ring_items[mask] = -1
        self.ring_weights[mask] = 0.0

    def size(self) -> dict[str, int]:
        return {
            "users": len(self.ids),
            "user_rows": self.ids.capacity,
            "histories": len(self.seen),
            "history_seen_items": sum(len(s) for s in self.seen.values()),
            "taste_profiles": int(self.has_taste.sum()),
            "profiles": len(self.segments),
        }
