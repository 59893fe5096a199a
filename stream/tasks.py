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

Where views are logged, the click, cart and purchase that follow a view are
its *outcome*, not new impressions: the view is labelled with the deepest step
the user reached on that item before their next view (:func:`outcome_labels`),
and the later events label nothing themselves. Otherwise a predictor could
score well just by noticing that the user touched the item a moment ago.

>>> from stream.events import Event
>>> task_labels(Event("u", "i", "add_to_cart", 0.0))
{'click': 1, 'add_to_cart': 1, 'purchase': 0}
>>> task_labels(Event("u", "i", "rating", 0.0, value=4.0))
{'like': 1}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

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


def funnel_depth(event_type: str) -> int:
    """0 for a view, 1 click, 2 add_to_cart, 3 purchase (-1 for other types)."""
    return FUNNEL.index(event_type) if event_type in FUNNEL else -1


class OpenViews:
    """Resolves views into labelled impressions as their outcomes arrive.

    Each user has at most one open view: the item viewed last. Click, cart
    and purchase events on that item deepen it; the next view (or the user
    being forgotten) closes it. ``observe`` returns what is resolved by an
    event, as ``(payload, labels)`` pairs, where the payload is whatever the
    caller attached when the event was observed (features for a model,
    predictions for a monitor). The same rule labels offline evaluation
    (:func:`outcome_labels`), the model's training and the live AUC.

    Parameters
    ----------
    max_open
        Open views kept at most (the oldest are resolved as they stand), so
        users who never come back do not hold memory forever.
    """

    def __init__(self, max_open: int = 100_000) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, list] = OrderedDict()  # user -> [item, depth, payload]

    def observe(self, event: Event, payload: object) -> list[tuple[object, dict[str, int]]]:
        step = funnel_depth(event.event_type)
        user = event.user_id
        current = self._open.get(user)
        if step > 0 and current is not None and current[0] == event.item_id:
            current[1] = max(current[1], step)  # an outcome of the open view
            return []
        resolved = []
        if step == 0 or event.event_type == "forget_user":
            if current is not None:
                del self._open[user]
                resolved.append((current[2], _depth_labels(current[1])))
            if step == 0:
                self._open[user] = [event.item_id, 0, payload]
                while len(self._open) > self.max_open:
                    _, (_item, depth, old_payload) = self._open.popitem(last=False)
                    resolved.append((old_payload, _depth_labels(depth)))
            return resolved
        labels = task_labels(event)
        return [(payload, labels)] if labels else []

    def __len__(self) -> int:
        """Views waiting for their outcome."""
        return len(self._open)

    def drop(self, user_id: str) -> None:
        """Forget a user's open view without learning from it (right to be forgotten)."""
        self._open.pop(user_id, None)

    def flush(self) -> list[tuple[object, dict[str, int]]]:
        """Resolve every open view as it stands (end of a stream)."""
        resolved = [
            (payload, _depth_labels(depth)) for _item, depth, payload in self._open.values()
        ]
        self._open.clear()
        return resolved


def outcome_labels(events: Sequence[Event]) -> list[dict[str, int]]:
    """The labels each event is scored on, with hindsight over the stream.

    A view is labelled with the deepest funnel step the same user reached on
    the same item before viewing anything else; the funnel events that make
    up that outcome are not labelled again. A funnel event with no open view
    of its item (streams that do not log views) keeps its own labels, and
    ratings and dislikes label ``like`` as in :func:`task_labels`.

    >>> from stream.events import Event
    >>> stream = [Event("u", "a", "view", 0.0), Event("u", "a", "click", 1.0),
    ...           Event("u", "b", "view", 2.0), Event("u", "c", "purchase", 3.0)]
    >>> outcome_labels(stream)
    [{'click': 1, 'add_to_cart': 0, 'purchase': 0}, {}, \
{'click': 0, 'add_to_cart': 0, 'purchase': 0}, {'click': 1, 'add_to_cart': 1, 'purchase': 1}]
    """
    labels: list[dict[str, int]] = [{} for _ in events]
    views = OpenViews(max_open=len(events) + 1)
    for index, event in enumerate(events):
        for resolved_index, resolved_labels in views.observe(event, index):
            labels[resolved_index] = resolved_labels  # type: ignore[index]
    for resolved_index, resolved_labels in views.flush():
        labels[resolved_index] = resolved_labels  # type: ignore[index]
    return labels


def _depth_labels(depth: int) -> dict[str, int]:
    return {"click": int(depth >= 1), "add_to_cart": int(depth >= 2), "purchase": int(depth >= 3)}
