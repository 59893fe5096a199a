"""Compiled loops of the two-stage model: bounded per-item lists and sparse accumulation.

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
def learn_pairs(ids, weights, totals, item, weight, window, window_weights, distance_decay):  # noqa: ANN001, ANN201, PLR0913
    """Pair an engagement with the user's recent items (newest last), both ways.

    A pair counts ``min(weight, other's weight) * distance_decay ** steps``;
    ``totals[item]`` (the item's engagement, the cosine's norm) grows by ``weight``.
    """
    if weight <= 0.0:
        return
    totals[item] += weight
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
        scale *= distance_decay


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
def neighbour_scores(ids, weights, totals, alpha, sources, source_weights, acc, mark, epoch):  # noqa: ANN001, ANN201, PLR0913
    """Item-CF scores of every item in the sources' neighbour lists.

    ``score(c) = sum_s w_s * pair(s, c) / (total_s ** alpha * total_c ** (1 - alpha))``.
    ``acc`` and ``mark`` are scratch arrays over item rows (``mark`` holds
    the epoch of the call that last wrote ``acc``), so nothing is cleared
    and the cost is that of the entries read. Returns (items, scores).
    """
    width = ids.shape[1]
    out_items = np.empty(sources.shape[0] * width, dtype=np.int64)
    n = 0
    for s in range(sources.shape[0]):
        source = sources[s]
        w = source_weights[s]
        if w <= 0.0 or totals[source] <= 0.0:
            continue
        source_norm = totals[source] ** alpha
        for j in range(width):
            c = ids[source, j]
            if c < 0:
                break
            total_c = totals[c]
            if total_c <= 0.0:
                continue
            value = w * weights[source, j] / (source_norm * total_c ** (1.0 - alpha))
            if mark[c] != epoch:
                mark[c] = epoch
                acc[c] = value
                out_items[n] = c
                n += 1
            else:
                acc[c] += value
    items = out_items[:n].copy()
    scores = np.empty(n)
    for i in range(n):
        scores[i] = acc[items[i]]
    return items, scores


@numba.njit(cache=True)
def ring_push(rings, counts, row, value):  # noqa: ANN001, ANN201
    """Append ``value`` to ``row``'s ring (the newest overwrites the oldest)."""
    width = rings.shape[1]
    rings[row, counts[row] % width] = value
    counts[row] += 1


@numba.njit(cache=True)
def neighbour_user_items(  # noqa: ANN001, ANN201, PLR0913
    user, sources, source_weights, engagers, engager_counts, user_items, user_counts,
    per_user, acc, mark, epoch,
):  # fmt: skip
    """Recent items of users who recently engaged with the sources (user-based CF).

    For each source item, each of its recent engagers other than ``user``
    adds the source's weight to each of their ``per_user`` newest items.
    Returns (items, scores); scratch arrays as in :func:`neighbour_scores`.
    """
    e_width = engagers.shape[1]
    u_width = user_items.shape[1]
    out_items = np.empty(sources.shape[0] * e_width * per_user, dtype=np.int64)
    n = 0
    for s in range(sources.shape[0]):
        source = sources[s]
        w = source_weights[s]
        held = min(engager_counts[source], e_width)
        for e in range(held):
            other = engagers[source, e]
            if other < 0 or other == user:
                continue
            count = user_counts[other]
            take = min(per_user, min(count, u_width))
            for back in range(take):
                c = user_items[other, (count - 1 - back) % u_width]
                if c < 0:
                    continue
                if mark[c] != epoch:
                    mark[c] = epoch
                    acc[c] = w
                    out_items[n] = c
                    n += 1
                else:
                    acc[c] += w
    items = out_items[:n].copy()
    scores = np.empty(n)
    for i in range(n):
        scores[i] = acc[items[i]]
    return items, scores


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
