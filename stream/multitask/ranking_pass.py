"""One compiled pass from a user to a scored pool: retrieval, feature rows, heads.

Ranking a user reads a few thousand entries of bounded lists and scores a
few hundred candidates. Written as numpy calls that is a hundred calls of a
microsecond each; here it is one call. Column numbers come from
:mod:`stream.multitask.layout`, the same ones the numpy-side readers use.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from stream.multitask.layout import FEATURE, N_FEATURES, SOURCE, SOURCES

N_SOURCES = len(SOURCES)
#: ``domain_code`` of a pool open to every domain.
ANY_DOMAIN = -2
S_CF, S_CF_RECENT, S_MF, S_UCF = SOURCE["cf"], SOURCE["cf_recent"], SOURCE["mf"], SOURCE["ucf"]
S_POP, S_GENRE_POP = SOURCE["popularity"], SOURCE["genre_popularity"]
S_SEGMENT_POP, S_FRESH = SOURCE["segment_popularity"], SOURCE["fresh"]
F_CF, F_CF_RECENT, F_MF, F_UCF = FEATURE["cf"], FEATURE["cf_recent"], FEATURE["mf"], FEATURE["ucf"]
F_POP, F_GENRE_POP = FEATURE["popularity"], FEATURE["genre_popularity"]
F_SEGMENT_POP, F_GENRE_RECENT = FEATURE["segment_popularity"], FEATURE["genre_recent"]
F_GENRE_LATEST, F_LATEST_GENRE_POP = FEATURE["genre_latest"], FEATURE["latest_genre_popularity"]
F_CONTENT, F_CONTENT_RECENT = FEATURE["content"], FEATURE["content_recent"]
F_CF_X_CONTENT, F_BLEND = FEATURE["cf_x_content"], FEATURE["blend"]
F_ITEM_STATS = FEATURE["item_log_count"]
F_IS_FRESH = FEATURE["item_is_fresh"]
F_USER_COUNT, F_USER_RATING = FEATURE["user_log_count"], FEATURE["user_mean_rating"]
F_GAP, F_GAP_X_POP, F_GAP_X_CF = (
    FEATURE["user_gap"],
    FEATURE["gap_x_popularity"],
    FEATURE["gap_x_cf"],
)
F_MF_X_FRESH = FEATURE["mf_x_fresh"]
#: Scale slots: the tops of cf, cf_recent and ucf, then MF's low and span.
N_SCALES = 5
#: Head rows of the stacked weights (``stream.heads.HEAD_ORDER``).
P_RELEVANCE, P_CLICK, P_CART, P_PURCHASE, P_LIKE, P_RATING = 0, 1, 2, 3, 4, 5
_LOGIT_CLIP = 30.0


@numba.njit(cache=True)
def _accumulate(
    ids, weights, totals, inverse, alpha, sources, source_weights, acc, mark, epoch, out
):  # noqa: ANN001, ANN202, PLR0913
    """Item-CF scores into ``acc`` (``mark == epoch`` where written); reached items into
    ``out``; returns how many were reached."""
    n = 0
    width = ids.shape[1]
    for s in range(sources.shape[0]):
        source = sources[s]
        w = source_weights[s]
        if w <= 0.0 or source >= totals.shape[0] or totals[source] <= 0.0:
            continue
        scale = w / totals[source] ** alpha
        for j in range(width):
            c = ids[source, j]
            if c < 0:
                break
            value = scale * weights[source, j] * inverse[c]
            if mark[c] != epoch:
                mark[c] = epoch
                acc[c] = value
                out[n] = c
                n += 1
            else:
                acc[c] += value
    return n


@numba.njit(cache=True)
def _accumulate_users(  # noqa: ANN202, PLR0913
    user, sources, source_weights, engagers, engager_counts, user_items, user_counts,  # noqa: ANN001
    per_user, acc, mark, epoch, out,  # noqa: ANN001
):  # fmt: skip
    """Recent items of the sources' recent engagers (user-based CF), as :func:`_accumulate`."""
    n = 0
    e_width = engagers.shape[1]
    u_width = user_items.shape[1]
    for s in range(sources.shape[0]):
        source = sources[s]
        if source >= engager_counts.shape[0]:
            continue
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
                    out[n] = c
                    n += 1
                else:
                    acc[c] += w
    return n


@numba.njit(cache=True)
def _threshold(values, n, take):  # noqa: ANN001, ANN202
    """The ``take``-th largest of ``values[:n]`` (-inf when all fit)."""
    if n <= take or take <= 0:
        return -np.inf if take > 0 else np.inf
    return np.partition(values[:n], n - take)[n - take]


@numba.njit(cache=True)
def _cosine(columns, values, item, taste, inverse_norm, profile):  # noqa: ANN001, ANN202
    """Cosine of a taste profile and an item's content (unit length, read as its nonzeros)."""
    total = 0.0
    for j in range(columns.shape[1]):
        d = columns[item, j]
        if d < 0:
            break
        total += values[item, j] * taste[profile, d]
    return total * inverse_norm[profile]


@numba.njit(cache=True)
def gather_pool(  # noqa: ANN201, PLR0913, PLR0912, PLR0915
    user, history, history_weights, recent, recent_weights, user_genres, genre_history,  # noqa: ANN001
    seen, vector,  # noqa: ANN001
    taste, extra, fixed_scales, user_stats, n_items,  # noqa: ANN001
    nb_ids, nb_weights, totals, inverse, alpha,  # noqa: ANN001
    engagers, engager_counts, ring_items, ring_counts, ucf_sources, ucf_per_user,  # noqa: ANN001
    pop_scaled, pop_top, pop_list, genre_scaled, genre_lists, seg_scaled, seg_top, seg_list,  # noqa: ANN001, E501
    item_vectors, item_bias, mf_scope,  # noqa: ANN001
    genres, withdrawn, domain, domain_code, stats, content_columns, content_values, fresh,  # noqa: ANN001, E501
    caps, blend, pool_size,  # noqa: ANN001
    acc, mark, epoch, in_pool, genre_mark, genre_best,  # noqa: ANN001
):  # fmt: skip
    """A user's pool: candidates of every source, their raw scores and feature rows.

    ``user_genres``: the distinct genres whose popular lists (and, beyond the
    exact MF limit, items) are read; ``genre_history``: the primary genres of
    the user's newest items, newest first (the genre features).

    With ``fixed_scales`` (nonempty) the pool is just ``extra`` (an item row,
    or -1), scaled as given: the row of one item as its user's last pool
    would have scored it. Otherwise every source contributes, at most
    ``caps`` (cf, cf_recent, mf, ucf, fresh) each plus the popular lists,
    seen, withdrawn and other-domain items are left out (``extra`` is kept),
    and the ``pool_size`` best by the blend stay (the fresh picks too).
    ``mf_scope``: the items the MF source scans (a single -1: rows below ``n_items``).

    Returns (items, raw source scores, feature rows, scales).
    """
    room = (history.shape[0] + recent.shape[0]) * nb_ids.shape[1]
    room += ucf_sources * engagers.shape[1] * ucf_per_user + 1
    reached = np.empty(room, dtype=np.int64)
    single = fixed_scales.shape[0] > 0
    # Sparse sources (cf, cf_recent, ucf), each into its own scratch row;
    # their reached items lie one after another in ``reached``.
    n_cf = _accumulate(nb_ids, nb_weights, totals, inverse, alpha, history, history_weights,
                       acc[0], mark[0], epoch, reached)  # fmt: skip
    n_recent = _accumulate(nb_ids, nb_weights, totals, inverse, alpha, recent, recent_weights,
                           acc[1], mark[1], epoch, reached[n_cf:])  # fmt: skip
    n_ucf = 0
    if user >= 0 and history.shape[0] > 0:
        take = min(ucf_sources, history.shape[0])
        n_ucf = _accumulate_users(user, history[:take], history_weights[:take], engagers,
                                  engager_counts, ring_items, ring_counts, ucf_per_user,
                                  acc[2], mark[2], epoch, reached[n_cf + n_recent:])  # fmt: skip
    max_pool = n_cf + n_recent + n_ucf + pop_list.shape[0] + seg_list.shape[0]
    max_pool += genre_lists.shape[1] * user_genres.shape[0] + caps[2] + fresh.shape[0] + 2
    pool = np.empty(max_pool, dtype=np.int64)
    from_fresh = np.zeros(max_pool, dtype=np.bool_)
    n = 0
    # Seen items are marked as if already in the pool, so no source adds them.
    for i in range(seen.shape[0]):
        if seen[i] < n_items:
            in_pool[seen[i]] = epoch
    if extra >= 0:
        in_pool[extra] = epoch
        pool[n] = extra
        n += 1
    # Taste profiles' inverse lengths (0 for an empty profile).
    inverse_norm = np.zeros(taste.shape[0])
    for p in range(taste.shape[0]):
        length = 0.0
        for d in range(taste.shape[1]):
            length += taste[p, d] * taste[p, d]
        inverse_norm[p] = 1.0 / math.sqrt(length) if length > 0 else 0.0
    has_taste = taste.shape[0] >= 2
    # New items by content first: a pick of this source is kept whatever its blend.
    if not single and has_taste and caps[4] > 0 and fresh.shape[0] > 0:
        affinity = np.empty(fresh.shape[0])
        for i in range(fresh.shape[0]):
            affinity[i] = _cosine(content_columns, content_values, fresh[i], taste, inverse_norm, 0)
        cut = _threshold(affinity, fresh.shape[0], caps[4])
        for i in range(fresh.shape[0]):
            c = fresh[i]
            if affinity[i] > 0 and affinity[i] >= cut and in_pool[c] != epoch and not withdrawn[c]:
                if domain_code == ANY_DOMAIN or domain[c] == domain_code or domain[c] == -1:
                    in_pool[c] = epoch
                    pool[n] = c
                    from_fresh[n] = True
                    n += 1
    if not single:
        # The best of each sparse source.
        starts = (0, n_cf, n_cf + n_recent)
        counts = (n_cf, n_recent, n_ucf)
        source_caps = (caps[0], caps[1], caps[3])
        for source in range(3):
            start, count = starts[source], counts[source]
            if count == 0:
                continue
            values = np.empty(count)
            for i in range(count):
                values[i] = acc[source][reached[start + i]]
            cut = _threshold(values, count, source_caps[source])
            for i in range(count):
                c = reached[start + i]
                if values[i] >= cut and in_pool[c] != epoch and not withdrawn[c]:
                    if domain_code == ANY_DOMAIN or domain[c] == domain_code or domain[c] == -1:
                        in_pool[c] = epoch
                        pool[n] = c
                        n += 1
        # Popular lists: overall, the user's genres, their segment.
        for j in range(pop_list.shape[0] + user_genres.shape[0] * genre_lists.shape[1]
                       + seg_list.shape[0]):  # fmt: skip
            if j < pop_list.shape[0]:
                c = pop_list[j]
            elif j < pop_list.shape[0] + user_genres.shape[0] * genre_lists.shape[1]:
                at = j - pop_list.shape[0]
                g = user_genres[at // genre_lists.shape[1]]
                c = genre_lists[g, at % genre_lists.shape[1]] if g < genre_lists.shape[0] else -1
            else:
                c = seg_list[j - pop_list.shape[0] - user_genres.shape[0] * genre_lists.shape[1]]
            if c >= 0 and in_pool[c] != epoch and not withdrawn[c]:
                if domain_code == ANY_DOMAIN or domain[c] == domain_code or domain[c] == -1:
                    in_pool[c] = epoch
                    pool[n] = c
                    n += 1
        # Nearest MF items in the scope.
        if vector.shape[0] > 0 and caps[2] > 0:
            every = mf_scope.shape[0] == 1 and mf_scope[0] < 0
            size = n_items if every else mf_scope.shape[0]
            scores = np.empty(size)
            for i in range(size):
                c = i if every else mf_scope[i]
                if withdrawn[c] or in_pool[c] == epoch:
                    scores[i] = -np.inf
                else:
                    total = item_bias[c]
                    for f in range(vector.shape[0]):
                        total += item_vectors[c, f] * vector[f]
                    scores[i] = total
            cut = _threshold(scores, size, caps[2])
            for i in range(size):
                c = i if every else mf_scope[i]
                if scores[i] > -np.inf and scores[i] >= cut and in_pool[c] != epoch:
                    if domain_code == ANY_DOMAIN or domain[c] == domain_code or domain[c] == -1:
                        if n >= max_pool - fresh.shape[0]:
                            break  # ties at the cut: the cap is reached
                        in_pool[c] = epoch
                        pool[n] = c
                        n += 1
    # Raw scores of every candidate.
    raw = np.zeros((n, N_SOURCES))
    slow = np.zeros(n)  # content cosines with the slow and the fast taste profile
    fast = np.zeros(n)
    for r in range(n):
        c = pool[r]
        if mark[0][c] == epoch:
            raw[r, S_CF] = acc[0][c]
        if mark[1][c] == epoch:
            raw[r, S_CF_RECENT] = acc[1][c]
        if mark[2][c] == epoch:
            raw[r, S_UCF] = acc[2][c]
        if vector.shape[0] > 0:
            total = item_bias[c]
            for f in range(vector.shape[0]):
                total += item_vectors[c, f] * vector[f]
            raw[r, S_MF] = total
        if pop_top > 0:
            raw[r, S_POP] = pop_scaled[c] / pop_top
        g = genres[c, 0]
        if g >= 0 and g < genre_lists.shape[0]:
            if genre_mark[g] != epoch:
                genre_mark[g] = epoch
                best = 0.0
                for j in range(genre_lists.shape[1]):
                    t = genre_lists[g, j]
                    if t >= 0 and genre_scaled[t] > best:
                        best = genre_scaled[t]
                genre_best[g] = best
            if genre_best[g] > 0:
                raw[r, S_GENRE_POP] = min(genre_scaled[c] / genre_best[g], 1.0)
        if seg_top > 0 and c < seg_scaled.shape[0]:
            raw[r, S_SEGMENT_POP] = seg_scaled[c] / seg_top
        if has_taste:
            slow[r] = _cosine(content_columns, content_values, c, taste, inverse_norm, 0)
            fast[r] = _cosine(content_columns, content_values, c, taste, inverse_norm, 1)
            raw[r, S_FRESH] = slow[r] * stats[c, 1]
    # Scales.
    scales = np.zeros(N_SCALES)
    if single:
        scales[:] = fixed_scales
    elif n > 0:
        scales[0] = raw[:, S_CF].max()
        scales[1] = raw[:, S_CF_RECENT].max()
        scales[2] = raw[:, S_UCF].max()
        scales[3] = raw[:, S_MF].min()
        scales[4] = raw[:, S_MF].max() - scales[3]
    features = np.zeros((n, N_FEATURES))
    user_count, user_rating, gap = user_stats[0], user_stats[1], user_stats[2]
    for r in range(n):
        c = pool[r]
        row = features[r]
        row[F_CF] = raw[r, S_CF] / scales[0] if scales[0] > 0 else 0.0
        row[F_CF_RECENT] = raw[r, S_CF_RECENT] / scales[1] if scales[1] > 0 else 0.0
        row[F_UCF] = raw[r, S_UCF] / scales[2] if scales[2] > 0 else 0.0
        if scales[4] > 0:
            row[F_MF] = min(max((raw[r, S_MF] - scales[3]) / scales[4], 0.0), 1.0)
        row[F_POP] = raw[r, S_POP]
        row[F_GENRE_POP] = raw[r, S_GENRE_POP]
        row[F_SEGMENT_POP] = raw[r, S_SEGMENT_POP]
        g = genres[c, 0]
        if g >= 0 and genre_history.shape[0] > 0:
            same = 0
            for j in range(genre_history.shape[0]):
                same += genre_history[j] == g
            row[F_GENRE_RECENT] = same / genre_history.shape[0]
            if genre_history[0] == g:
                row[F_GENRE_LATEST] = 1.0
                row[F_LATEST_GENRE_POP] = raw[r, S_GENRE_POP]
        row[F_CONTENT] = slow[r]
        row[F_CONTENT_RECENT] = fast[r]
        row[F_CF_X_CONTENT] = row[F_CF] * row[F_CONTENT]
        for s in range(stats.shape[1]):
            row[F_ITEM_STATS + s] = stats[c, s]
        row[F_USER_COUNT] = user_count
        row[F_USER_RATING] = user_rating
        row[F_GAP] = gap
        row[F_GAP_X_POP] = gap * row[F_POP]
        row[F_GAP_X_CF] = gap * row[F_CF]
        row[F_MF_X_FRESH] = row[F_MF] * row[F_IS_FRESH]
        value = 0.0
        for f in range(N_FEATURES):
            value += blend[f] * row[f]
        row[F_BLEND] = value
    if single or n <= pool_size:
        return pool[:n].copy(), raw, features, scales
    values = features[:, F_BLEND].copy()
    cut = _threshold(values, n, pool_size)
    keep = np.zeros(n, dtype=np.bool_)
    kept = 0
    for r in range(n):
        if (values[r] > cut and kept < pool_size) or from_fresh[r] or pool[r] == extra:
            keep[r] = True
            kept += 1
    for r in range(n):  # ties at the cut, in pool order, up to the size
        if not keep[r] and values[r] == cut and kept < pool_size:
            keep[r] = True
            kept += 1
    index = np.flatnonzero(keep)
    return pool[index], raw[index], features[index], scales


@numba.njit(cache=True)
def score_rows(features, weights, intercepts, known, chain, rating_offset, value_weights):  # noqa: ANN001, ANN201
    """Every head's prediction per row (columns ``P_*``; with ``chain`` the funnel
    products) and the score ``logit(relevance) + log(1 + sum_t w_t p_t)``."""
    n = features.shape[0]
    n_heads = weights.shape[0]
    out = np.zeros((n, n_heads))
    scores = np.empty(n)
    for r in range(n):
        logit = 0.0
        for h in range(n_heads):
            if not known[h]:
                continue
            raw = intercepts[h]
            for f in range(features.shape[1]):
                raw += features[r, f] * weights[h, f]
            if h == P_RATING:
                out[r, h] = min(max(raw + rating_offset, 1.0), 5.0)
            else:
                if h == P_RELEVANCE:
                    logit = raw
                clipped = min(max(raw, -_LOGIT_CLIP), _LOGIT_CLIP)
                out[r, h] = 1.0 / (1.0 + math.exp(-clipped))
        if chain:
            out[r, P_CART] *= out[r, P_CLICK]
            out[r, P_PURCHASE] *= out[r, P_CART]
        value = 1.0
        for h in range(n_heads):
            value += value_weights[h] * out[r, h]
        scores[r] = logit + math.log(value)
    return out, scores


@numba.njit(cache=True)
def top_k(scores, blend, items, k, skip):  # noqa: ANN001, ANN201
    """Positions of the ``k`` best rows by score, then blend, then lower item row; rows
    with ``skip`` set are passed over."""
    n = scores.shape[0]
    taken = skip.copy()
    take = min(k, n - int(skip.sum()))
    out = np.empty(max(take, 0), dtype=np.int64)
    for slot in range(take):
        best = -1
        for r in range(n):
            if taken[r]:
                continue
            if best < 0:
                best = r
                continue
            if scores[r] > scores[best] or (
                scores[r] == scores[best]
                and (blend[r] > blend[best] or (blend[r] == blend[best] and items[r] < items[best]))
            ):
                best = r
        taken[best] = True
        out[slot] = best
    return out
