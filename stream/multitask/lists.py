"""From a scored pool to a list: the top k, a diversity re-rank, exploration slots, reasons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.engagement import PAST_TENSE
from stream.exploration import ThompsonExplorer
from stream.heads import HEAD_ORDER
from stream.model import RecommendedItem
from stream.multitask.catalog import ItemCatalog
from stream.multitask.layout import FEATURE
from stream.multitask.neighbours import ItemNeighbours
from stream.multitask.ranking_pass import top_k
from stream.multitask.retrieval import UserContext
from stream.multitask.users import KINDS, UserSide

#: Candidates the diversity re-rank considers (the best by score).
_DIVERSITY_DEPTH = 50


@dataclass(slots=True)
class Ranked:
    """A user's list as chosen: pool positions of the entries, best first, and what they read."""

    ctx: UserContext
    chosen: np.ndarray  # item rows, best first
    positions: np.ndarray  # their rows in the pool
    features: np.ndarray
    predictions: np.ndarray  # (pool, heads): columns of HEAD_ORDER
    known: np.ndarray  # which heads predict
    scores: np.ndarray
    explored: int  # entries at the end that are exploration slots


def choose(
    ctx: UserContext,
    items: np.ndarray,
    features: np.ndarray,
    predictions: np.ndarray,
    known: np.ndarray,
    scores: np.ndarray,
    k: int,
    diversity: float,
    exploration: float,
    explorer: ThompsonExplorer,
    catalog: ItemCatalog,
) -> Ranked:
    """The ``k`` entries: best scores first (ties: higher blend first, then lower row);
    with ``diversity``, a maximal-marginal-relevance re-rank; with ``exploration``,
    Thompson-sampled fresh items in the last slots."""
    n_explore = explorer.slots(k, exploration) if exploration > 0 else 0
    blend = features[:, FEATURE["blend"]]
    skip = np.zeros(items.shape[0], dtype=bool)
    explored = np.zeros(0, dtype=np.int64)
    if n_explore:
        fresh = np.flatnonzero(features[:, FEATURE["item_is_fresh"]] > 0)
        picked = explorer.pick(items[fresh], n_explore)
        explored = np.flatnonzero(np.isin(items, picked))
        skip[explored] = True
    take = k - explored.shape[0]
    if diversity > 0:
        order = top_k(scores, blend, items, _DIVERSITY_DEPTH, skip)
        top = _diversified(order, scores, catalog.content[items], diversity, take)
    else:
        top = top_k(scores, blend, items, take, skip)
    positions = np.concatenate([top, explored]).astype(np.int64)
    if n_explore:
        explorer.shown(items[positions])
    return Ranked(
        ctx, items[positions], positions, features, predictions, known, scores, explored.shape[0]
    )


def _diversified(
    order: np.ndarray, scores: np.ndarray, content: np.ndarray, weight: float, k: int
) -> np.ndarray:
    """Greedy MMR: each pick maximises ``(1 - weight) * score - weight * max similarity``
    to the picks so far (scores min-max scaled over the considered candidates)."""
    if not order.size:
        return order
    values = scores[order]
    span = values.max() - values.min()
    scaled = (values - values.min()) / span if span > 0 else np.zeros(order.shape[0])
    vectors = content[order].astype(np.float64)
    similar = np.zeros(order.shape[0])
    taken = np.zeros(order.shape[0], dtype=bool)
    picks = []
    for _ in range(min(k, order.shape[0])):
        value = np.where(taken, -np.inf, (1 - weight) * scaled - weight * similar)
        best = int(np.argmax(value))
        picks.append(best)
        taken[best] = True
        similar = np.maximum(similar, vectors @ vectors[best])
    return order[np.array(picks, dtype=np.int64)]


def entries(
    ranked: Ranked,
    catalog: ItemCatalog,
    users: UserSide,
    neighbours: ItemNeighbours,
    with_reasons: bool,
) -> list[RecommendedItem]:
    out = []
    tasks = [(name, h) for h, name in enumerate(HEAD_ORDER) if ranked.known[h]]
    n = ranked.chosen.shape[0]
    for slot, (item, position) in enumerate(
        zip(ranked.chosen.tolist(), ranked.positions.tolist(), strict=True)
    ):
        parts = {task: float(ranked.predictions[position, h]) for task, h in tasks}
        explored = slot >= n - ranked.explored
        if explored:
            parts["explore"] = 1.0  # an exploration slot, not a ranking by score
        score = float(ranked.scores[position])
        if explored and out:
            # A list's scores never rise: an exploration slot is placed, not ranked.
            score = min(score, out[-1].score)
        reason = ""
        if with_reasons:
            reason = (
                "new: we are trying it out with a few people"
                if explored
                else _reason(
                    ranked.ctx, item, ranked.features[position], catalog, users, neighbours
                )
            )
        out.append(RecommendedItem(catalog.ids.external(item), score, parts, reason))
    return out


def _reason(
    ctx: UserContext, item: int, row: np.ndarray, catalog: ItemCatalog, users: UserSide,
    neighbours: ItemNeighbours,
) -> str:  # fmt: skip
    """The reason of the evidence that says most for the item."""
    evidence = {
        "cf": row[FEATURE["cf"]],
        "ucf": 0.5 * row[FEATURE["ucf"]],
        "mf": 0.3 * row[FEATURE["mf"]],
        "genre": 0.3 * row[FEATURE["genre_popularity"]] * row[FEATURE["genre_recent"]],
        "segment": 0.2 * row[FEATURE["segment_popularity"]],
        "fresh": 0.4 * row[FEATURE["item_is_fresh"]] * max(row[FEATURE["content"]], 0.0),
        "popularity": 0.1 * row[FEATURE["popularity"]] + 1e-9,
    }
    source = max(evidence, key=evidence.__getitem__)
    if source == "cf" and ctx.row is not None and ctx.history.size:  # "because of" an item
        strengths = np.array([neighbours.similarity(int(h), item) for h in ctx.history.tolist()])
        strengths *= ctx.history_weights
        if strengths.max() > 0:
            because = int(ctx.history[int(np.argmax(strengths))])
            recent, _, kinds = users.recent(ctx.row)
            kind = (
                KINDS[int(kinds[np.flatnonzero(recent == because)[0]])]
                if (recent == because).any()
                else ""
            )
            where = catalog.domain_name(because)
            elsewhere = where is not None and where != catalog.domain_name(item)
            return f"similar to {catalog.label(because)} you {PAST_TENSE.get(kind, 'liked')}" + (
                f" in {where}" if elsewhere else ""
            )
    if source in ("ucf", "mf"):
        # A stranger's MF vector is their segment's (from their profile).
        return (
            "liked by people with tastes like yours"
            if ctx.row is not None
            else ("liked by people like you")
        )
    genre = catalog.primary_genre(item)
    if source == "genre" and genre is not None:
        return f"popular in {genre} now"
    if source == "segment":
        return "liked by people like you"
    if source == "fresh":
        return f"new in {genre}" if genre is not None else "new, close to what you like"
    return "popular now"
