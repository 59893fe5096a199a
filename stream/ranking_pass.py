"""Ranking one user in one compiled call: signals, candidates, features, scores, top k.

:func:`signal_matrix` scores every item by each retrieval signal (item-CF,
MF, popularity, user-CF, recent item-CF) and their blend. Given that
matrix, :func:`rank_pool` does what the multitask model's ranking steps did
as some forty numpy calls:

1. the ``n_candidates`` open items with the best retrieval blend;
2. up to ``n_fresh`` fresh items by the cosine of the user's slow content
   profile with their content (only those with a positive affinity and not
   already among the first);
3. each candidate's shared feature row (``FEATURE_NAMES`` of the model);
4. every head's prediction and the final score;
5. the top ``k`` candidates by that score.

:func:`rank_user` chains the two (and the blocked items) in one call: once
the loop around it has pushed their code and data out of the CPU caches,
each compiled call costs more than its arithmetic.

Selections break ties by the lower item row (or candidate position), so a
ranking does not depend on how a selection algorithm happens to order equal
values. Dot products are summed in a vectorised order and scaling
multiplies by reciprocals, so the numbers agree with the numpy expressions
these loops replaced to rounding, not bit for bit (``tests/test_kernels.py``,
``tests/test_ranking_pass.py``).

Every compiled function that calls another lives in this one file: numba's
on-disk cache is invalidated per source file, so a caller cached in another
file could keep running a callee's old code.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Columns of the predictions ``rank_pool`` returns (the heads' ``_ORDER``).
P_RELEVANCE, P_CLICK, P_ADD_TO_CART, P_PURCHASE, P_LIKE, P_RATING = range(6)
#: Feature columns that depend on the time of scoring (``FEATURE_NAMES``:
#: ``user_gap``, ``gap_x_popularity``, ``gap_x_cf``) and those they multiply.
COL_CF, COL_POPULARITY, COL_GAP, COL_GAP_X_POPULARITY, COL_GAP_X_CF = 0, 2, 15, 16, 17
#: Columns fill_features writes (``FEATURE_NAMES`` of the multitask model).
N_FEATURES = 21
#: Logits are clipped to this before the sigmoid (as the heads' numpy path does).
_LOGIT_CLIP = 30.0

#: Rows of the signal matrix :func:`signal_matrix` fills (``SIGNAL_ROWS`` of the multitask model).
ROW_CF, ROW_MF, ROW_POPULARITY, ROW_UCF, ROW_BLEND, ROW_CF_RECENT = range(6)


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def signal_matrix(  # noqa: ANN001, ANN201, PLR0913
    n_items,
    cf_raw,
    cf_recent_raw,
    inverse_norms,
    mf_user,
    mf_items,
    mf_bias,
    popularity_scaled,
    popularity_inverse_top,
    ucf_raw,
    blend_rows,
    blend_weights,
    recent_cf_weight,
):
    """One user's signal matrix, shape ``(6, n_items)``, rows ``ROW_*``.

    - ``cf``, ``cf_recent``: raw item-CF sums times ``inverse_norms``, divided
      by their maximum when positive (an empty raw array: all zeros);
    - ``mf``: the MF scores ``mf_items[j] . mf_user + mf_bias[j]`` min-max
      scaled to [0, 1] (an empty ``mf_user``: zeros);
    - ``popularity``: ``popularity_scaled * popularity_inverse_top`` (items
      beyond the array: 0);
    - ``ucf``: ``ucf_raw`` divided by its maximum (empty: zeros);
    - ``blend``: ``recent_cf_weight * cf_recent + sum_r blend_weights[r] * row[blend_rows[r]]``.

    Two passes over the items: raw values and their extremes, then scaling
    and the blend. The arithmetic may be reordered (vectorised sums,
    multiplying by a reciprocal), so results agree with the numpy
    expressions to rounding, not bit for bit.
    """
    out = np.zeros((6, n_items))
    has_cf = cf_raw.shape[0] > 0
    has_recent = cf_recent_raw.shape[0] > 0
    has_ucf = ucf_raw.shape[0] > 0
    has_mf = mf_user.shape[0] > 0 and n_items > 0
    cf, recent, mf, ucf = out[ROW_CF], out[ROW_CF_RECENT], out[ROW_MF], out[ROW_UCF]
    cf_top = recent_top = ucf_top = mf_high = -np.inf
    mf_low = np.inf
    for j in range(n_items):
        if has_cf:
            cf[j] = cf_raw[j] * inverse_norms[j]
            cf_top = max(cf_top, cf[j])
        if has_recent:
            recent[j] = cf_recent_raw[j] * inverse_norms[j]
            recent_top = max(recent_top, recent[j])
        if has_ucf:
            ucf[j] = ucf_raw[j]
            ucf_top = max(ucf_top, ucf[j])
        if has_mf:
            score = mf_bias[j]
            row = mf_items[j]
            for f in range(mf_user.shape[0]):
                score += row[f] * mf_user[f]
            mf[j] = score
            mf_low = min(mf_low, score)
            mf_high = max(mf_high, score)
    # A row whose maximum is not positive stays as it is (all zeros or less).
    cf_scale = 1.0 / cf_top if cf_top > 0 else 1.0
    recent_scale = 1.0 / recent_top if recent_top > 0 else 1.0
    ucf_scale = 1.0 / ucf_top if ucf_top > 0 else 1.0
    mf_span = mf_high - mf_low if has_mf else 0.0
    mf_scale = 1.0 / mf_span if mf_span > 0 else 0.0
    known = min(n_items, popularity_scaled.shape[0]) if popularity_inverse_top > 0 else 0
    popularity = out[ROW_POPULARITY]
    blend = out[ROW_BLEND]
    weights = np.zeros(6)
    for r in range(blend_rows.shape[0]):
        weights[blend_rows[r]] += blend_weights[r]
    weights[ROW_CF_RECENT] += recent_cf_weight
    for j in range(n_items):
        cf[j] *= cf_scale
        recent[j] *= recent_scale
        ucf[j] *= ucf_scale
        mf[j] = (mf[j] - mf_low) * mf_scale if has_mf else 0.0
        if j < known:
            popularity[j] = popularity_scaled[j] * popularity_inverse_top
        blend[j] = (
            weights[ROW_CF] * cf[j]
            + weights[ROW_MF] * mf[j]
            + weights[ROW_POPULARITY] * popularity[j]
            + weights[ROW_UCF] * ucf[j]
            + weights[ROW_CF_RECENT] * recent[j]
        )
    return out


@numba.njit(cache=True, inline="always")
def _worse(value_a, index_a, value_b, index_b):  # noqa: ANN001, ANN202
    """Whether entry a ranks below entry b: a lower value, or an equal one at a higher index."""
    return value_a < value_b or (value_a == value_b and index_a > index_b)


@numba.njit(cache=True)
def top_indices(values, allowed, take):  # noqa: ANN001, ANN201
    """Indices of the ``take`` largest ``values`` where ``allowed``, best first.

    Equal values: the lower index first. A bounded min-heap (the worst kept
    entry at the root), so the cost is one comparison for most entries.
    """
    heap_values = np.empty(max(take, 0))
    heap_index = np.empty(max(take, 0), dtype=np.int64)
    size = 0
    for j in range(values.shape[0]):
        if not allowed[j]:
            continue
        value = values[j]
        if size < take:
            position = size
            size += 1
            while position > 0:
                parent = (position - 1) >> 1
                if _worse(value, j, heap_values[parent], heap_index[parent]):
                    heap_values[position] = heap_values[parent]
                    heap_index[position] = heap_index[parent]
                    position = parent
                else:
                    break
            heap_values[position] = value
            heap_index[position] = j
        elif take > 0 and _worse(heap_values[0], heap_index[0], value, j):
            _sift_down(heap_values, heap_index, size, value, j)
    # Pop the worst into the last free slot until the heap is empty: best first.
    out = np.empty(size, dtype=np.int64)
    for last in range(size - 1, -1, -1):
        out[last] = heap_index[0]
        if last > 0:
            _sift_down(heap_values, heap_index, last, heap_values[last], heap_index[last])
    return out


@numba.njit(cache=True, inline="always")
def _sift_down(heap_values, heap_index, size, value, index):  # noqa: ANN001, ANN202
    """Put (value, index) at the root of the min-heap of ``size`` entries and restore order."""
    position = 0
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _worse(
            heap_values[right], heap_index[right], heap_values[child], heap_index[child]
        ):
            child = right
        if _worse(heap_values[child], heap_index[child], value, index):
            heap_values[position] = heap_values[child]
            heap_index[position] = heap_index[child]
            position = child
        else:
            break
    heap_values[position] = value
    heap_index[position] = index


#: Let LLVM reorder the sums of dot products (and fuse multiply-adds) so it
#: can vectorise them; no assumptions about infinities or NaN.
_DOT_MATH = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=_DOT_MATH)
def _dot(a, b):  # noqa: ANN001, ANN202
    total = 0.0
    for f in range(a.shape[0]):
        total += a[f] * b[f]
    return total


@numba.njit(cache=True)
def taste_cosine(content, item, profiles, inverse_norms, profile):  # noqa: ANN001, ANN201
    """Cosine of the user's ``profile`` (a row of ``profiles``) with the item's content.

    ``content``: the items' unit-length content vectors as sparse rows
    (columns, values, counts: :meth:`~stream.features.ItemContent.sparse_table`);
    ``inverse_norms``: see :func:`inverse_lengths`.
    """
    columns, values, counts = content
    total = 0.0
    for k in range(counts[item]):
        total += values[item, k] * profiles[profile, columns[item, k]]
    return total * inverse_norms[profile]


@numba.njit(cache=True)
def inverse_lengths(profiles):  # noqa: ANN001, ANN201
    """1 / the length of each profile (row), 1 for an empty one (which then scores 0)."""
    out = np.ones(profiles.shape[0])
    for p in range(profiles.shape[0]):
        length = math.sqrt(_dot(profiles[p], profiles[p]))
        if length > 0:
            out[p] = 1.0 / length
    return out


@numba.njit(cache=True)
def fill_features(out, signals, items, pair_inputs):  # noqa: ANN001, ANN201
    """Shared feature rows of (user, item) for each of ``items`` into ``out`` (``FEATURE_NAMES``).

    ``signals``: the user's signal matrix. ``pair_inputs``: everything else a
    row reads, as a tuple ``(item_static, content, profiles, user_log_count,
    user_mean_rating, gap, segment_scaled, segment_top)``: per-item columns
    (log count, is fresh, mean rating, log price, year); the items' content
    vectors (see :func:`taste_cosine`); the user's content profiles (slow,
    fast), shape (0, w) for a user without one; the user's evidence and
    session gap; and the segment's popularity relative to its top item (0
    beyond the array, or when ``segment_top`` is not positive: no segment).
    """
    (
        item_static,
        content,
        profiles,
        user_log_count,
        user_mean_rating,
        gap,
        segment_scaled,
        segment_top,
    ) = pair_inputs
    if out.shape[1] < N_FEATURES:
        raise ValueError("feature rows are narrower than the features they hold")
    has_taste = profiles.shape[0] >= 2
    inverse_norms = inverse_lengths(profiles)
    for r in range(items.shape[0]):
        item = items[r]
        cf = signals[ROW_CF, item]
        mf = signals[ROW_MF, item]
        popularity = signals[ROW_POPULARITY, item]
        row = out[r]
        row[0] = cf
        row[1] = mf
        row[2] = popularity
        row[3] = signals[ROW_UCF, item]
        row[4] = signals[ROW_BLEND, item]
        if has_taste:
            row[5] = taste_cosine(content, item, profiles, inverse_norms, 0)
            row[6] = taste_cosine(content, item, profiles, inverse_norms, 1)
        else:
            row[5] = 0.0
            row[6] = 0.0
        row[7] = cf * row[5]
        row[8] = item_static[item, 0]
        row[9] = item_static[item, 1]
        row[10] = user_log_count
        row[11] = item_static[item, 2]
        row[12] = user_mean_rating
        row[13] = item_static[item, 3]
        row[14] = item_static[item, 4]
        row[COL_GAP] = gap
        row[COL_GAP_X_POPULARITY] = gap * popularity
        row[COL_GAP_X_CF] = gap * cf
        row[18] = signals[ROW_CF_RECENT, item]
        if segment_top > 0 and item < segment_scaled.shape[0]:
            row[19] = segment_scaled[item] / segment_top
        else:
            row[19] = 0.0
        # A linear head cannot tell on its own that MF means something else for
        # a new item (whose vector is mostly its content prior) than for a warm one.
        row[20] = mf * item_static[item, 1]


def with_session_gap(row: np.ndarray, gap: float) -> np.ndarray:
    """A copy of a feature row (from :func:`fill_features`) as scored at another time.

    Only the session-gap columns depend on when a row is scored.
    """
    out = row.copy()
    out[COL_GAP] = gap
    out[COL_GAP_X_POPULARITY] = gap * out[COL_POPULARITY]
    out[COL_GAP_X_CF] = gap * out[COL_CF]
    return out


@numba.njit(cache=True)
def predict_heads(features, weights, intercepts, known, chain, rating_offset):  # noqa: ANN001, ANN201
    """Every head's prediction per feature row, columns ``P_*``, and the relevance logits.

    ``weights``: one row per head (``P_*`` order), one column per feature;
    ``known``: nonzero for the heads that have learned (the others are 0).

    Columns 0-4 are probabilities (with ``chain``, add-to-cart and purchase
    are the funnel products ``p(click) p(cart | click)`` and
    ``p(cart) p(purchase | cart)``); column 5 is the rating in [1, 5].
    """
    n = features.shape[0]
    n_heads = weights.shape[0]
    out = np.empty((n, n_heads))
    logits = np.empty(n)
    for r in range(n):
        for h in range(n_heads):
            if not known[h]:
                out[r, h] = 0.0  # a head that has not learned predicts nothing
                continue
            raw = intercepts[h] + _dot(features[r], weights[h])
            if h == P_RATING:
                out[r, h] = min(max(raw + rating_offset, 1.0), 5.0)
            else:
                if h == P_RELEVANCE:
                    logits[r] = raw
                clipped = min(max(raw, -_LOGIT_CLIP), _LOGIT_CLIP)
                out[r, h] = 1.0 / (1.0 + math.exp(-clipped))
        if chain:
            out[r, P_ADD_TO_CART] *= out[r, P_CLICK]
            out[r, P_PURCHASE] *= out[r, P_ADD_TO_CART]
    return out, logits


@numba.njit(cache=True)
def final_scores(predictions, logits, value_weights):  # noqa: ANN001, ANN201
    """``logit(relevance) + log(1 + sum_t w_t p_t)``: the log of ``odds(relevance) x value``.

    ``value_weights`` per prediction column (0 for tasks without a head yet).
    """
    n = logits.shape[0]
    out = np.empty(n)
    for r in range(n):
        value = 1.0
        for h in range(value_weights.shape[0]):
            if value_weights[h] != 0.0:
                value += value_weights[h] * predictions[r, h]
        out[r] = logits[r] + math.log(value)
    return out


@numba.njit(cache=True)
def rank_pool(  # noqa: ANN001, ANN201, PLR0913
    signals,
    blocked,
    n_candidates,
    fresh_pool,
    n_fresh,
    pair_inputs,
    weights,
    intercepts,
    known,
    chain,
    rating_offset,
    value_weights,
    k,
):
    """One user's ranking (see the module): candidates, features, predictions, scores, top ``k``.

    ``pair_inputs``: see :func:`fill_features`; ``weights``, ``intercepts``,
    ``known``, ``chain``, ``rating_offset``: see :func:`predict_heads`;
    ``value_weights``: see :func:`final_scores`.

    Returns ``(candidates, n_fresh_taken, features, predictions, scores, chosen)``:
    the candidates are the blend's best then the fresh ones (the last
    ``n_fresh_taken``); ``chosen`` are positions in the candidates, best first.
    """
    n_items = blocked.shape[0]
    content, profiles = pair_inputs[1], pair_inputs[2]
    best = top_indices(signals[ROW_BLEND], ~blocked, min(n_candidates, n_items))
    fresh = np.empty(0, dtype=np.int64)
    if n_fresh > 0 and profiles.shape[0] >= 2 and fresh_pool.shape[0] > 0:
        inverse_norms = inverse_lengths(profiles)
        in_best = np.zeros(n_items, dtype=np.bool_)
        for j in best:
            in_best[j] = True
        affinity = np.empty(fresh_pool.shape[0])
        allowed = np.zeros(fresh_pool.shape[0], dtype=np.bool_)
        n_open = 0
        for p in range(fresh_pool.shape[0]):
            item = fresh_pool[p]
            if item < n_items and not blocked[item]:
                n_open += 1
                affinity[p] = taste_cosine(content, item, profiles, inverse_norms, 0)
                allowed[p] = True
            else:
                affinity[p] = 0.0
        # The n_fresh closest open items, then only those that are close at all
        # and not already candidates.
        picked = top_indices(affinity, allowed, min(n_fresh, n_open))
        keep = np.zeros(picked.shape[0], dtype=np.bool_)
        for q in range(picked.shape[0]):
            keep[q] = affinity[picked[q]] > 0 and not in_best[fresh_pool[picked[q]]]
        fresh = fresh_pool[picked[keep]]
    candidates = np.concatenate((best, fresh))
    features = np.empty((candidates.shape[0], weights.shape[1]))
    fill_features(features, signals, candidates, pair_inputs)
    predictions, logits = predict_heads(features, weights, intercepts, known, chain, rating_offset)
    scores = final_scores(predictions, logits, value_weights)
    everyone = np.ones(candidates.shape[0], dtype=np.bool_)
    chosen = top_indices(scores, everyone, min(k, candidates.shape[0]))
    return candidates, fresh.shape[0], features, predictions, scores, chosen


@numba.njit(cache=True)
def blocked_items(n_items, withdrawn, seen, outside):  # noqa: ANN001, ANN201
    """Items never to show: withdrawn, seen by the user, or ``outside`` (the list's domain).

    ``outside`` may be empty (no domain restriction) or shorter than
    ``n_items`` (items beyond it are not outside).
    """
    blocked = np.empty(n_items, dtype=np.bool_)
    for j in range(n_items):
        blocked[j] = withdrawn[j] if j < withdrawn.shape[0] else False
    for item in seen:
        if item < n_items:
            blocked[item] = True
    for j in range(min(n_items, outside.shape[0])):
        blocked[j] = blocked[j] or outside[j]
    return blocked


@numba.njit(cache=True)
def rank_user(signals, signal_inputs, withdrawn, seen, outside, *pool_arguments):  # noqa: ANN001, ANN002, ANN201
    """One user's whole ranking in one call: :func:`signal_matrix` (unless
    ``signals`` has columns: a cached matrix), :func:`blocked_items`, then
    :func:`rank_pool` with ``pool_arguments`` (its arguments after ``blocked``).

    Each compiled call costs more than its arithmetic once the loop around
    it has pushed its data out of the CPU caches, so ranking makes one call,
    not three.

    Returns ``(signals, blocked)`` followed by what :func:`rank_pool` returns.
    """
    if signals.shape[1] == 0:
        signals = signal_matrix(*signal_inputs)
    blocked = blocked_items(signals.shape[1], withdrawn, seen, outside)
    return (signals, blocked) + rank_pool(signals, blocked, *pool_arguments)
