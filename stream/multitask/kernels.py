"""Compiled loops of the multi-task model: bounded per-item lists and sparse accumulation.

Every loop here touches a bounded number of entries (a list of ``M``
neighbours, a ring of ``R`` engagers, a user's last ``H`` items), never the
catalog: that is what keeps the cost of an event flat as the catalog grows.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def bounded_add(ids, weights, row, target, amount):  # noqa: ANN001, ANN201
    """Add ``amount`` to ``target`` in ``row``'s bounded list.

    A list holds up to ``2 * keep`` entries, filled from the left (-1 marks the
    free end); when it is full, it is pruned to its ``keep`` heaviest (in the
    manner of lossy counting: a pair that matters keeps its exact weight, a
    light one may be dropped and start again from zero). Unlike Space-Saving,
    no entry is ever credited with weight it did not earn, which on
    MovieLens-100K kept the ranking of neighbours close to that of exact counts.
    """
    width = ids.shape[1]
    for j in range(width):
        t = ids[row, j]
        if t == target:
            weights[row, j] += amount
            return
        if t < 0:
            ids[row, j] = target
            weights[row, j] = amount
            return
    keep = width // 2
    order = np.argsort(-weights[row])
    kept_ids = ids[row][order[:keep]].copy()
    kept_weights = weights[row][order[:keep]].copy()
    ids[row, :keep] = kept_ids
    weights[row, :keep] = kept_weights
    ids[row, keep:] = -1
    weights[row, keep:] = 0.0
    ids[row, keep] = target
    weights[row, keep] = amount


@numba.njit(cache=True)
def learn_pairs(
    ids,
    weights,
    totals,
    inverse,
    alpha,
    item,
    weight,
    window,
    window_weights,
    distance_decay,
    amounts,
):  # noqa: ANN001, ANN201, PLR0913
    """Pair an engagement with the user's recent items (newest last), both ways.

    A pair counts ``min(weight, other's weight) * distance_decay ** steps``;
    ``totals[item]`` (the item's engagement, the cosine's norm) grows by ``weight``
    and ``inverse[item]`` is kept at ``totals[item] ** (alpha - 1)``, the
    target's half of the cosine, so scoring needs no power per entry.
    ``amounts[j]`` is set to what the pair with ``window[j]`` added (0 for none),
    which the scale-out sync passes on.
    """
    amounts[:] = 0.0
    if weight <= 0.0:
        return
    totals[item] += weight
    inverse[item] = totals[item] ** (alpha - 1.0)
    n = window.shape[0]
    scale = 1.0
    for back in range(n):
        j = n - 1 - back
        other = window[j]
        other_weight = window_weights[j]
        if other != item and other_weight > 0.0:
            amount = min(weight, other_weight) * scale
            bounded_add(ids, weights, item, other, amount)
            bounded_add(ids, weights, other, item, amount)
            amounts[j] = amount
        scale *= distance_decay


@numba.njit(cache=True)
def merge_pairs(ids, weights, totals, inverse, alpha, item, total, others, amounts):  # noqa: ANN001, ANN201, PLR0913
    """Add another model's pair weights to ``item``'s list (one way: each item's
    list arrives in its own record) and ``total`` to its engagement."""
    if total != 0.0:
        totals[item] += total
        inverse[item] = totals[item] ** (alpha - 1.0) if totals[item] > 0.0 else 0.0
    for n in range(others.shape[0]):
        if amounts[n] > 0.0:
            bounded_add(ids, weights, item, others[n], amounts[n])


@numba.njit(cache=True)
def drop_targets(ids, weights, rows, gone):  # noqa: ANN001, ANN201
    """Remove every target marked in ``gone`` (a bool per item row) from the lists of ``rows``,
    keeping each list packed from the left."""
    width = ids.shape[1]
    for r in rows:
        keep = 0
        for j in range(width):
            t = ids[r, j]
            if t < 0:
                break
            if not gone[t]:
                ids[r, keep] = t
                weights[r, keep] = weights[r, j]
                keep += 1
        for j in range(keep, width):
            ids[r, j] = -1
            weights[r, j] = 0.0


@numba.njit(cache=True)
def ring_push(rings, counts, row, value):  # noqa: ANN001, ANN201
    """Append ``value`` to ``row``'s ring (the newest overwrites the oldest)."""
    width = rings.shape[1]
    rings[row, counts[row] % width] = value
    counts[row] += 1


@numba.njit(cache=True)
def top_list_update(ids, scaled, item):  # noqa: ANN001, ANN201
    """Keep ``item`` in a fixed-size list of the heaviest items by ``scaled`` (-1 = free slot).

    Every score decays at the same rate (they are stored scaled alike), so an
    item that has just grown enters by outweighing the lightest entry, and the
    list never needs a pass over the catalog.
    """
    lightest = -1
    lightest_value = np.inf
    for j in range(ids.shape[0]):
        t = ids[j]
        if t == item:
            return
        if t < 0:
            if lightest_value > -np.inf:
                lightest = j
                lightest_value = -np.inf
        elif scaled[t] < lightest_value:
            lightest = j
            lightest_value = scaled[t]
    if lightest >= 0 and scaled[item] > lightest_value:
        ids[lightest] = item


@numba.njit(cache=True)
def recency_weighted(items, weights, count, decay, n):  # noqa: ANN001, ANN201
    """A ring's newest ``n`` positively weighted items, each once (its newest), newest first,
    weighted ``weight * decay ** steps back``."""
    width = items.shape[0]
    take = min(count, min(n, width))
    out_items = np.empty(take, dtype=np.int64)
    out_weights = np.empty(take)
    kept = 0
    scale = 1.0
    for back in range(take):
        at = (count - 1 - back) % width
        item = items[at]
        weight = weights[at]
        if item >= 0 and weight > 0:
            repeated = False
            for j in range(kept):
                if out_items[j] == item:
                    repeated = True
                    break
            if not repeated:
                out_items[kept] = item
                out_weights[kept] = weight * scale
                kept += 1
        scale *= decay
    return out_items[:kept], out_weights[:kept]
