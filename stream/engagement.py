"""How strongly each event says "the user wants this", and how a reason names it.

Both models weigh events alike: a view 0.5, a click 1, a cart 2, a purchase
3, a dislike -1, and a rating ``r`` ``1 + slope * (r - midpoint)``, floored at
0.1 (even a low rating means the user chose to watch).

>>> from stream.events import Event
>>> engagement_weight(Event("u", "i", "rating", 0.0, 5.0), DEFAULT_EVENT_WEIGHTS, 3.0, 0.25)
1.5
"""

from __future__ import annotations

from stream.events import Event

#: Engagement weight per event type; a dislike is negative.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "add_to_cart": 2.0,
    "purchase": 3.0,
    "rating": 1.0,
    "dislike": -1.0,
}

#: What a reason says the user did ("similar to X you rated").
PAST_TENSE = {
    "view": "viewed",
    "click": "clicked",
    "add_to_cart": "added to your cart",
    "purchase": "bought",
    "rating": "rated",
}


def engagement_weight(
    event: Event, weights: dict[str, float], rating_midpoint: float, rating_slope: float
) -> float:
    """The event's engagement weight under ``weights`` (ratings scaled by their stars)."""
    if event.event_type == "rating" and event.value is not None:
        return max(0.1, weights["rating"] + rating_slope * (event.value - rating_midpoint))
    return weights.get(event.event_type, 0.0)
