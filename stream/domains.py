"""Which domain each item belongs to, so a list can be asked for one domain.

Events carry a ``domain`` (``"movies"``, ``"books"``, ...; ``"default"`` when
the producer has only one). An item's domain comes from its catalog record
(``features["domain"]``) or from the events on it. A user keeps one history
and one set of embeddings across domains: that is what lets what they did in
one domain inform their first list in another. Asking for a list in a domain
only removes the other domains' items from it.

>>> domains = ItemDomains()
>>> domains.set(0, "movies"); domains.set(2, "books")
>>> domains.outside("books", 4).tolist()
[True, False, False, False]
"""

from __future__ import annotations

import numpy as np

from stream.entities import grown
from stream.events import DEFAULT_DOMAIN

#: A user's state in one domain, when domains are kept apart (``domain_transfer=False``),
#: is held under ``user_id + PERSONA_SEPARATOR + domain``.
PERSONA_SEPARATOR = "\x1f"


class ItemDomains:
    """Domain code per item row (-1: not known, counts as every domain)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._names: list[str] = []
        self._of_item = np.full(0, -1, dtype=np.int32)

    @property
    def n_domains(self) -> int:
        return len(self._names)

    def code(self, name: str) -> int | None:
        return self._codes.get(name)

    def name(self, code: int) -> str:
        return self._names[code]

    def set(self, item: int, name: str) -> None:
        """``item`` belongs to domain ``name`` (the default domain says nothing)."""
        if name == DEFAULT_DOMAIN:
            return
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self._names)
            self._names.append(name)
        if item >= self._of_item.shape[0]:
            self._of_item = grown(self._of_item, item + 1, fill=-1)
        self._of_item[item] = code

    def of(self, item: int) -> str | None:
        """The item's domain name, None when unknown."""
        if item >= self._of_item.shape[0] or self._of_item[item] < 0:
            return None
        return self._names[int(self._of_item[item])]

    def clear(self, items: np.ndarray | list[int]) -> None:
        rows = np.asarray(items, dtype=np.int64)
        rows = rows[rows < self._of_item.shape[0]]
        self._of_item[rows] = -1

    def outside(self, name: str | None, n_items: int) -> np.ndarray | None:
        """Items of rows ``0..n_items-1`` known to be in another domain than ``name``.

        None when there is nothing to exclude (no domain asked, or one not seen).
        """
        if name is None or name == DEFAULT_DOMAIN or not self._names:
            return None
        code = self._codes.get(name, -2)
        known = min(n_items, self._of_item.shape[0])
        out = np.zeros(n_items, dtype=bool)
        of = self._of_item[:known]
        out[:known] = (of >= 0) & (of != code)
        return out
