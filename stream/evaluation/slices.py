"""Hit rate on the hard cases: cold items, cold users, users new to a domain.

The overall HR@k is dominated by warm users and popular items. Transfer
(features for new items, demographics for new users, one domain for
another) matters exactly where the model has no history, so the loop also
keeps HR@k on these slices of the ranked events, each decided from what
happened *before* the event:

``cold_items``
    the event's item had fewer than ``COLD_INTERACTIONS`` earlier interactions
    (any event type) in the stream;
``cold_users``
    the user had fewer than ``COLD_INTERACTIONS`` earlier events;
``new_in_domain``
    the event is among the user's first ``NEW_IN_DOMAIN_EVENTS`` ranked events in
    its domain, and the user had been active in another domain before entering
    this one (so another domain's history could inform the list).

It also counts which items were recommended while still cold:
``cold_item_coverage`` over every item, ``new_item_coverage`` over items that
arrived during the stream (a catalog record after the first event, or an
item first seen in an event when it has no catalog record).

Per ranked event this costs a few dictionary probes, and one per listed item.

>>> slices = EventSlices()
>>> from stream.events import Event
>>> e = Event("u", "i", "click", 1.0)
>>> flags = slices.before_rank(e); slices.ranked(flags, hit=True, listed=["i", "j"])
>>> slices.after_event(e)
>>> slices.summary(10)["hr@10_cold_items"]
1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from stream.events import DEFAULT_DOMAIN, Event, Item

#: Earlier interactions below which an item (or user) counts as cold.
COLD_INTERACTIONS = 5
#: Ranked events per user and domain that count as "new in the domain".
NEW_IN_DOMAIN_EVENTS = 5

SLICES = ("cold_items", "cold_users", "new_in_domain")


class EventSlices:
    """Counters of the slices above; fed by the prequential loop.

    Parameters
    ----------
    catalog
        Catalog items: an item whose record is dated after the first event
        counts as new (see :meth:`start`).
    """

    def __init__(self, catalog: Sequence[Item] = ()) -> None:
        self._released = {item.item_id: item.timestamp for item in catalog}
        self._item_events: dict[str, int] = {}
        self._user_events: dict[str, int] = {}
        # user -> domain -> [ranked events in the domain, entered with history elsewhere]
        self._domains: dict[str, dict[str, list[int]]] = {}
        self._hits = dict.fromkeys(SLICES, 0)
        self._counts = dict.fromkeys(SLICES, 0)
        self._cold_recommended: set[str] = set()
        self._new_items: set[str] = set()
        self._start: float | None = None

    def start(self, timestamp: float) -> None:
        """The first event's time: catalog items released after it are new."""
        self._start = timestamp
        self._new_items = {i for i, t in self._released.items() if t > timestamp}

    def before_rank(self, event: Event) -> tuple[bool, bool, bool]:
        """The event's slice flags, from what came before it; counts its domain entry."""
        item_cold = self._item_events.get(event.item_id, 0) < COLD_INTERACTIONS  # type: ignore[arg-type]
        user_cold = self._user_events.get(event.user_id, 0) < COLD_INTERACTIONS
        new_in_domain = False
        domains = self._domains.get(event.user_id)
        if domains is None:
            domains = self._domains[event.user_id] = {}
        entry = domains.get(event.domain)
        if entry is None:
            entry = domains[event.domain] = [0, int(bool(domains))]
        if entry[1] and entry[0] < NEW_IN_DOMAIN_EVENTS:
            new_in_domain = True
        entry[0] += 1
        return item_cold, user_cold, new_in_domain

    def ranked(self, flags: tuple[bool, bool, bool], hit: bool, listed: Iterable[str]) -> None:
        """Count a ranked event's hit in its slices; note the cold items it listed."""
        for name, flag in zip(SLICES, flags, strict=True):
            if flag:
                self._counts[name] += 1
                self._hits[name] += hit
        counts = self._item_events
        for item_id in listed:
            if counts.get(item_id, 0) < COLD_INTERACTIONS:
                self._cold_recommended.add(item_id)

    def after_event(self, event: Event) -> None:
        """Count the event as an earlier interaction for the events that follow."""
        item_id = event.item_id
        if item_id is None:
            return
        if item_id not in self._item_events:
            self._item_events[item_id] = 0
            if item_id not in self._released and self._start is not None:
                self._new_items.add(item_id)
        self._item_events[item_id] += 1
        self._user_events[event.user_id] = self._user_events.get(event.user_id, 0) + 1

    def forget(self, user_id: str) -> None:
        """A forgotten user comes back as a new one."""
        self._user_events.pop(user_id, None)
        self._domains.pop(user_id, None)

    def summary(self, k: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SLICES:
            n = self._counts[name]
            out[f"hr@{k}_{name}"] = self._hits[name] / n if n else None
        out["slice_events"] = dict(self._counts)
        universe = set(self._released) | set(self._item_events)
        out["cold_item_coverage"] = (
            len(self._cold_recommended & universe) / len(universe) if universe else None
        )
        new = self._new_items
        out["new_items"] = len(new)
        out["new_item_coverage"] = len(self._cold_recommended & new) / len(new) if new else None
        out["domains"] = (
            len({d for per_user in self._domains.values() for d in per_user} - {DEFAULT_DOMAIN})
            or 1
        )
        return out
