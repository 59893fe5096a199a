"""Building a ranked list's entries: diversity, exploration slots and reasons.

:class:`ListEntries` (a mixin of :class:`~stream.multitask.MultiTaskRecommender`)
turns one user's ranking (:class:`_Ranking`, what ``_rank`` computed) into
the list's :class:`~stream.model.RecommendedItem` entries.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from stream.model import RecommendedItem
from stream.ranking_pass import top_indices
from stream.task_features import _EMPTY, SIGNAL_ROWS


@dataclass(slots=True)
class _Ranking:
    """One user's ranking, before it becomes a list's entries (see ``_rank``)."""

    user_id: str
    user: int | None
    n_items: int
    signals: np.ndarray  # the user's signal matrix (SIGNAL_ROWS x items)
    candidates: np.ndarray  # item rows scored; the last ``n_fresh`` from the fresh source
    n_fresh: int
    predictions: np.ndarray  # per candidate, a column per head (HEAD_ORDER)
    score: np.ndarray  # per candidate, the final score
    positions: np.ndarray  # candidates chosen for the list, in order
    explored: np.ndarray  # item rows for the exploration slots, placed last

    def chosen_items(self) -> list[int]:
        return self.candidates[self.positions].tolist()


class ListEntries:
    """The entries of a ranked list, and the steps that pick them (a mixin).

    Reads the model's settings ``task_weights``, ``diversity``, ``fresh_pool``,
    ``fresh_threshold`` and ``blend``; its state ``_heads``, ``_items``,
    ``_content``, ``_fresh``, ``_fresh_version``, ``_explorer``, ``_has_prior``
    and ``_item_counts``; its methods ``_features`` and ``_reason`` (the
    hybrid's); and keeps ``_fresh_pool_cache``.
    """

    def _entries(self, ranking: _Ranking, with_reasons: bool) -> list[RecommendedItem]:
        """The list's entries: item, score, each task's prediction, and (with reasons) why."""
        user_id, user, candidates, n_fresh = (
            ranking.user_id, ranking.user, ranking.candidates, ranking.n_fresh
        )  # fmt: skip
        positions = ranking.positions
        fresh_set = set(candidates[candidates.shape[0] - n_fresh :].tolist()) if n_fresh else set()
        chosen_items = ranking.chosen_items()
        chosen_scores = ranking.score[positions].tolist()
        known_tasks = self._heads.known_tasks()
        tasks = [task for task, _ in known_tasks]
        # One conversion for the whole list, not one per (task, item).
        columns = [column for _, column in known_tasks]
        task_rows = ranking.predictions[positions][:, columns].tolist()
        external = self._items.external
        entries = []
        for at, item in enumerate(chosen_items):
            reason = ""
            if with_reasons:
                source = "fresh" if item in fresh_set else None
                reason = self._reason_for(user_id, user, item, ranking.signals, source)
            scores = dict(zip(tasks, task_rows[at], strict=True))
            entries.append(RecommendedItem(external(item), chosen_scores[at], scores, reason))
        explored = ranking.explored
        if explored.size:
            entries += self._explored_entries(
                user_id, user, explored, ranking.n_items, entries, with_reasons
            )
            self._explorer.shown(np.array([self._items.get(e.item_id) for e in entries]))
        return entries

    def _final_score(self, predictions: dict[str, np.ndarray]) -> np.ndarray:
        """``logit(relevance) + log(1 + sum_t w_t p_t)``; pops ``relevance_logit``."""
        value = 1.0 + sum(
            self.task_weights[task] * values
            for task, values in predictions.items()
            if task in self.task_weights
        )
        # The log of odds(relevance) * value: the relevance logit does not
        # squash distinctions near p = 1 the way p(relevance) would.
        return predictions.pop("relevance_logit") + np.log(value)

    def _explore(self, blocked: np.ndarray, n_items: int, n: int) -> np.ndarray:
        """Up to ``n`` low-evidence items (the newest fresh ones), picked by Thompson sampling."""
        pool = np.fromiter(itertools.islice(reversed(self._fresh), self.fresh_pool), dtype=np.int64)
        pool = pool[pool < n_items]
        pool = pool[~blocked[pool]]
        return self._explorer.pick(pool, n)

    def _explored_entries(
        self,
        user_id: str,
        user: int | None,
        items: np.ndarray,
        n_items: int,
        above: list[RecommendedItem],
        with_reasons: bool,
    ) -> list[RecommendedItem]:
        """Entries of explored items, placed after the ranked ones.

        Each carries its heads' predictions; its score is capped at the score
        of the entry above it, so the list stays sorted best first.
        """
        predictions = self._heads.predict(self._features(user, items, n_items, user_id=user_id))
        score = self._final_score(predictions)
        ceiling = above[-1].score if above else math.inf
        entries = []
        for position, item in enumerate(items.tolist()):
            ceiling = min(ceiling, float(score[position]))
            scores = {task: float(v[position]) for task, v in predictions.items()}
            scores["explore"] = 1.0
            reason = self._reason_for(user_id, user, item, None, "explore") if with_reasons else ""
            entries.append(RecommendedItem(self._items.external(item), ceiling, scores, reason))
        return entries

    def _fresh_pool(self, n_items: int) -> np.ndarray:
        """The newest ``fresh_pool`` fresh items that have content, by row.

        The same for every user until an item turns fresh or warm or its
        content changes, so it is kept until then.
        """
        key = (self._fresh_version, n_items)
        if self._fresh_pool_cache is None or self._fresh_pool_cache[0] != key:
            pool = np.fromiter(
                itertools.islice(reversed(self._fresh), self.fresh_pool), dtype=np.int64
            )
            pool = pool[self._content.has_content(n_items)[pool]]
            pool.sort()
            self._fresh_pool_cache = (key, pool)
        return self._fresh_pool_cache[1]

    def _diversify(
        self, candidates: np.ndarray, score: np.ndarray, k: int, exclude: np.ndarray = _EMPTY
    ) -> list[int]:
        """Positions of the chosen candidates: by score, or by MMR when ``diversity > 0``.

        Candidates in ``exclude`` (items already in the list) are never chosen.
        """
        available = ~np.isin(candidates, exclude) if exclude.size else np.ones(score.size, bool)
        k = min(k, int(available.sum()))
        if k <= 0:
            return []
        if self.diversity <= 0:
            return top_indices(score, available, k).tolist()
        vectors = self._content.vectors(candidates)
        similarity = vectors @ vectors.T
        low, high = score[available].min(), score[available].max()
        relevance = (score - low) / (high - low) if high > low else np.zeros_like(score)
        chosen: list[int] = []
        max_similarity = np.zeros(candidates.size)
        for _ in range(k):
            value = (1 - self.diversity) * relevance - self.diversity * max_similarity
            value[~available] = -np.inf
            pick = int(np.argmax(value))
            chosen.append(pick)
            available[pick] = False
            max_similarity = np.maximum(max_similarity, similarity[pick])
        return chosen

    def _reason_for(
        self,
        user_id: str,
        user: int | None,
        item: int,
        signals: np.ndarray | None,
        source: str | None,
    ) -> str:
        """Why the item is in the list, from the source that put it there.

        ``source``: ``"explore"`` (an exploration slot), ``"fresh"`` (the
        content-affinity candidate source for new items), or None: the
        retrieval signal that weighed most in the item's blend.
        """
        genre = self._content.first_genre(item)
        if source == "explore":
            return "new: we are trying it out" + (f" ({genre})" if genre else "")
        if source == "fresh":
            return "new, in a genre you like"
        assert signals is not None
        parts = {name: float(signals[SIGNAL_ROWS.index(name), item]) for name in self.blend}
        weighted = {name: self.blend[name] * value for name, value in parts.items()}
        top = max(weighted, key=weighted.__getitem__)
        if top == "mf" and weighted["mf"] > 0:
            if user is None:
                # The MF scores came from the user's demographic segment.
                return "liked by people like you"
            if self._transferred(item):
                return (
                    f"new in {genre}, like what you enjoy" if genre else "new, like what you enjoy"
                )
        return self._reason(user_id, item, parts)

    def _transferred(self, item: int) -> bool:
        """Whether the item's embedding is still mostly its content prior (a cold item)."""
        return (
            item < self._has_prior.shape[0]
            and bool(self._has_prior[item])
            and self._item_counts.events.shape[0] > item
            and self._item_counts.events[item] < self.fresh_threshold
        )
