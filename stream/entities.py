"""Dense integer ids for users and items, so their state can live in numpy rows.

A model keeps one :class:`IdIndex` for users and one for items. Rows freed by
forgetting a user (or, later, expiring an idle one) are reused, so the tables
stay as large as the live population, not as the history of every id seen.
"""

from __future__ import annotations

import numpy as np


class IdIndex:
    """A two-way map between external string ids and dense row numbers.

    >>> users = IdIndex()
    >>> users.add("alice"), users.add("bob"), users.add("alice")
    (0, 1, 0)
    >>> users.get("carol") is None      # looking up never creates state
    True
    >>> users.remove("alice")
    0
    >>> users.add("carol")              # the freed row is reused
    0
    """

    __slots__ = ("_index", "_ids", "_free")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._free: list[int] = []

    def __len__(self) -> int:
        """Number of live ids."""
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    @property
    def capacity(self) -> int:
        """Number of rows ever handed out: every row index is below it."""
        return len(self._ids)

    def get(self, external_id: str) -> int | None:
        return self._index.get(external_id)

    def add(self, external_id: str) -> int:
        """The row of ``external_id``, allocating one on first sight."""
        row = self._index.get(external_id)
        if row is not None:
            return row
        if self._free:
            row = self._free.pop()
            self._ids[row] = external_id
        else:
            row = len(self._ids)
            self._ids.append(external_id)
        self._index[external_id] = row
        return row

    def remove(self, external_id: str) -> int | None:
        """Free the row of ``external_id``; returns it so callers can clear their tables."""
        row = self._index.pop(external_id, None)
        if row is not None:
            self._ids[row] = None
            self._free.append(row)
        return row

    def external(self, row: int) -> str:
        external_id = self._ids[row]
        if external_id is None:
            raise KeyError(f"row {row} is free")
        return external_id

    def externals(self, rows: list[int]) -> list[str]:
        """:meth:`external` of each of ``rows``, in one pass (a ranked list's ids)."""
        ids = self._ids
        out = [ids[row] for row in rows]
        if None in out:
            raise KeyError(f"row {rows[out.index(None)]} is free")
        return out  # type: ignore[return-value]

    def live_rows(self) -> np.ndarray:
        """Rows currently in use, ascending."""
        return np.fromiter(sorted(self._index.values()), dtype=np.int64, count=len(self._index))

    def items(self) -> list[tuple[str, int]]:
        return list(self._index.items())


def grown(array: np.ndarray, rows: int, fill: float = 0.0) -> np.ndarray:
    """``array`` with at least ``rows`` rows, doubling so growth is amortised O(1).

    Returns the same array when it is already large enough.
    """
    if array.shape[0] >= rows:
        return array
    new_rows = max(rows, 2 * array.shape[0], 64)
    bigger = np.full((new_rows, *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger
