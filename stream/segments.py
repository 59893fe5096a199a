"""What is popular among users like this one: popularity per demographic segment.

User profiles (``user-profiles`` topic) carry side features such as age,
gender and occupation. A user's segment is their gender and age band; each
segment keeps its own decayed popularity, so a user with little history can
still be shown what people like them engage with now.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.signals import DecayedPopularity


def segment_of(features: dict[str, Any]) -> str | None:
    """``"gender:age band"`` from profile features, or None when neither is given.

    >>> segment_of({"age": 34, "gender": "F", "occupation": "writer"})
    'F:30s'
    >>> segment_of({"occupation": "writer"}) is None
    True
    """
    gender = features.get("gender")
    age = features.get("age")
    band = f"{int(age) // 10 * 10}s" if isinstance(age, (int, float)) and age >= 0 else "?"
    gender_text = gender if isinstance(gender, str) and gender else "?"
    if band == "?" and gender_text == "?":
        return None
    return f"{gender_text}:{band}"


class SegmentPopularity:
    """Decayed item popularity within each demographic segment.

    Parameters
    ----------
    half_life
        Seconds of event time after which an engagement counts half (longer
        than the global popularity's: a segment sees fewer events).
    """

    def __init__(self, half_life: float = 14 * 86400.0) -> None:
        self.half_life = half_life
        self._segment_of_user: dict[str, str] = {}
        self._popularity: dict[str, DecayedPopularity] = {}

    def set_profile(self, user_id: str, features: dict[str, Any]) -> None:
        segment = segment_of(features)
        if segment is None:
            self._segment_of_user.pop(user_id, None)
        else:
            self._segment_of_user[user_id] = segment

    def forget(self, user_id: str) -> None:
        self._segment_of_user.pop(user_id, None)

    def profiles(self) -> list[tuple[str, str]]:
        """(user id, segment) of every user with a segment."""
        return list(self._segment_of_user.items())

    def segment(self, user_id: str | None) -> str | None:
        """The user's segment, None without a profile that names one."""
        return None if user_id is None else self._segment_of_user.get(user_id)

    def forget_items(self, items: np.ndarray) -> None:
        for popularity in self._popularity.values():
            popularity.forget_items(items)

    def learn(self, user_id: str, item: int, weight: float, timestamp: float) -> None:
        segment = self._segment_of_user.get(user_id)
        if segment is None or weight <= 0:
            return
        popularity = self._popularity.get(segment)
        if popularity is None:
            popularity = self._popularity[segment] = DecayedPopularity(self.half_life)
        popularity.learn(item, weight, timestamp)

    def table(self, user_id: str | None) -> tuple[np.ndarray, float]:
        """The user's segment's scaled popularity and its top score (empty and 0 without one).

        ``scaled[j] / top`` is :meth:`scores` of item ``j``, for compiled loops.
        """
        popularity = self._popularity_of(user_id)
        if popularity is None:
            return _NO_SCORES, 0.0
        return popularity.scaled_and_top()

    def scores(self, user_id: str | None, items: np.ndarray) -> np.ndarray:
        """The user's segment's popularity of ``items``, scaled so the segment's top item is 1."""
        popularity = self._popularity_of(user_id)
        if popularity is None:
            return np.zeros(items.shape[0])
        return popularity.relative(items)

    def _popularity_of(self, user_id: str | None) -> DecayedPopularity | None:
        """The popularity of the user's segment (None without a segment or its events)."""
        segment = self._segment_of_user.get(user_id) if user_id is not None else None
        return self._popularity.get(segment) if segment is not None else None

    def __len__(self) -> int:
        """Users with a known segment."""
        return len(self._segment_of_user)


_NO_SCORES = np.zeros(0)
