"""When users and items were last active, so idle ones can expire.

An endless stream of new ids (visitors who never come back, items that go
out of stock) would make every per-user and per-item table grow without end.
:class:`ActivityClock` keeps ids in order of their last activity (event
time), so the idle ones are always at the front: a sweep pops exactly the
ids that have expired, never scanning the live ones. The model does a sweep
every so many events, which amortises the cost over them.

>>> clock = ActivityClock()
>>> clock.touch("a", 10.0); clock.touch("b", 20.0); clock.touch("a", 30.0)
>>> clock.pop_idle(before=25.0)
['b']
>>> len(clock)
1
"""

from __future__ import annotations

from collections import OrderedDict


class ActivityClock:
    """Ids in order of last activity (oldest first), with their last activity time.

    Times before the first event (a catalog or profile record delivered at
    start-up with an old or zero timestamp) are held as ``None`` and stamped
    with the first event's time by :meth:`start`, so records replayed at
    start-up do not expire at once.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: OrderedDict[str, float | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: object) -> bool:
        return key in self._last

    def touch(self, key: str, when: float | None) -> None:
        """``key`` was active at ``when`` (event time; None: before the stream started)."""
        last = self._last
        last[key] = when
        last.move_to_end(key)

    def start(self, when: float) -> None:
        """Stamp every record held since before the stream started with its first event's time."""
        for key, value in self._last.items():
            if value is None:
                self._last[key] = when

    def drop(self, key: str) -> None:
        self._last.pop(key, None)

    def last(self, key: str) -> float | None:
        return self._last.get(key)

    def pop_idle(self, before: float) -> list[str]:
        """Remove and return the ids whose last activity is earlier than ``before``.

        Event times are not strictly ordered, so a slightly late event can
        sit behind a newer one: the sweep stops at the first id still live,
        and such an id expires at a later sweep instead.
        """
        idle = []
        last = self._last
        while last:
            key, when = next(iter(last.items()))
            if when is None or when >= before:
                break
            del last[key]
            idle.append(key)
        return idle
