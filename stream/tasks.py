"""The behaviours the model predicts, and the label each event gives them.

Each event is a moment when a user met an item; the tasks ask how deep that
meeting goes. On a shopping funnel a ``view`` is an impression, and the click,
cart and purchase tasks say whether it went (or will be seen to go) at least
that far:

============  =====  ===========  ========
event type    click  add_to_cart  purchase
============  =====  ===========  ========
view            0         0          0
click           1         0          0
add_to_cart     1         1          0
purchase        1         1          1
============  =====  ===========  ========

so ``p(purchase) <= p(add_to_cart) <= p(click)`` by construction, which is what
lets a chain learn ``p(purchase) = p(click) * p(purchase | click)`` (the ESMM
idea). A ``rating`` labels ``like`` (stars >= 4) and gives a ``rating`` value
to regress; a ``dislike`` is a negative ``like``.

>>> from stream.events import Event
>>> task_labels(Event("u", "i", "add_to_cart", 0.0))
{'click': 1, 'add_to_cart': 1, 'purchase': 0}
>>> task_labels(Event("u", "i", "rating", 0.0, value=4.0))
{'like': 1}
"""

from __future__ import annotations

from stream.events import Event

#: Binary tasks, in funnel order, then preference.
TASKS = ("click", "add_to_cart", "purchase", "like")
FUNNEL = ("view", "click", "add_to_cart", "purchase")
#: Stars at or above which a rating counts as a like.
LIKE_THRESHOLD = 4.0


def task_labels(event: Event) -> dict[str, int]:
    """The binary labels this event gives, keyed by task (empty if none)."""
    if event.event_type in FUNNEL:
        depth = FUNNEL.index(event.event_type)
        return {
            "click": int(depth >= 1),
            "add_to_cart": int(depth >= 2),
            "purchase": int(depth >= 3),
        }
    if event.event_type == "rating" and event.value is not None:
        return {"like": int(event.value >= LIKE_THRESHOLD)}
    if event.event_type == "dislike":
        return {"like": 0}
    return {}


def rating_target(event: Event) -> float | None:
    """The stars of a rating event (for RMSE), else None."""
    return event.value if event.event_type == "rating" else None
