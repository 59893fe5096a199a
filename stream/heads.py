"""Task heads: River learners, one per behaviour, over a shared feature vector.

Every head reads the same features of a (user, item) pair: collaborative
scores, embeddings' agreement, popularity, content affinity, item and user
statistics. That shared representation is learned from all engagement; the
heads only learn how to read it for their task, so a task with few labels
(purchase) benefits from the others' data without its gradient pulling on
theirs (no task conflict in shared weights).

The funnel is a chain, as in ESMM: ``p(click)``, then ``p(add_to_cart | click)``
learned only on clicked events, then ``p(purchase | add_to_cart)`` learned
only on carted ones, and

    p(add_to_cart) = p(click) * p(add_to_cart | click)
    p(purchase)    = p(add_to_cart) * p(purchase | add_to_cart)

The ``single`` mode is the counterpart the chain is measured against: each
funnel task learned directly on all funnel events by its own head. River's
generic ``multioutput.ClassifierChain`` (earlier links' predictions fed in as
features, every link learning on every impression) does no better than
``single`` on the same rows (``bench/river_chain.py``): the gain comes from
learning each step only where the step before happened.

Heads learn one example at a time with River; ranking scores many candidates
at once by reading each head's weights into a numpy vector (refreshed only
after the head has learned).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from river import linear_model, optim

from stream.kernels import learn_pool_pairs

TASK_MODES = ("chain", "single")


class _RiverHead:
    """A River linear model (logistic or least-squares) that can also score a matrix at once.

    River learns one dict example at a time; ranking reads the learned weights
    into a numpy vector (in feature-name order) to score many rows together.
    """

    def __init__(self, names: list[str], model: linear_model.base.GLM) -> None:
        self.names = names
        self.model = model
        self.n_learned = 0
        self._weights: np.ndarray | None = None

    def learn(self, row: np.ndarray | dict[str, float], target: bool | float) -> None:
        """Learn one example: a feature row, or the row already as River's dict."""
        x = row if isinstance(row, dict) else dict(zip(self.names, row.tolist(), strict=True))
        self.model.learn_one(x, target)
        self.n_learned += 1
        self._weights = None

    def weight_vector(self) -> np.ndarray:
        if self._weights is None:
            # River's weight store converts itself to numpy in name order.
            self._weights = self.model._weights.to_numpy(self.names)
        return self._weights

    def intercept(self) -> float:
        return float(self.model.intercept)

    def add(self, weights: np.ndarray, intercept: float, learned: int) -> None:
        """Add another copy's updates: weight and intercept changes, and how many examples."""
        store = self.model._weights
        for name, change in zip(self.names, weights.tolist(), strict=True):
            if change:
                store[name] = store.get(name, 0.0) + change
        self.model.intercept += intercept
        self.n_learned += learned
        self._weights = None


def _logistic(names: list[str], learning_rate: float, l2: float) -> _RiverHead:
    return _RiverHead(
        names,
        linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate), intercept_lr=learning_rate, l2=l2
        ),
    )


def _least_squares(names: list[str], learning_rate: float, l2: float) -> _RiverHead:
    return _RiverHead(
        names,
        linear_model.LinearRegression(
            optimizer=optim.SGD(learning_rate), intercept_lr=learning_rate, l2=l2
        ),
    )


class PairwiseRanker:
    """Linear RankNet: learns from (picked - passed over) feature differences.

    The relevance head re-ranks every candidate pool and learns several pairs
    per event, so it is the one head written directly in numpy (one vector
    update per pair, about a microsecond) rather than through River's
    dict-based ``learn_one``; the behaviour heads stay River learners.

    Parameters
    ----------
    names
        Feature names, in column order.
    learning_rate
        SGD step.
    prior
        Starting weights by feature name.
    """

    def __init__(
        self, names: list[str], learning_rate: float, prior: dict[str, float] | None = None
    ) -> None:
        self.names = names
        self.learning_rate = learning_rate
        self.weights = np.array([(prior or {}).get(name, 0.0) for name in names])
        self.n_learned = 0

    def learn(self, difference: np.ndarray) -> None:
        """One pair: ``difference`` = features(picked) - features(passed over)."""
        margin = float(difference @ self.weights)
        # d/dw -log sigmoid(w.d) = -sigmoid(-w.d) * d
        self.weights += self.learning_rate * difference / (1.0 + math.exp(min(margin, 30.0)))
        self.n_learned += 1

    def learn_pool(
        self, features: np.ndarray, picked: int, n_pairs: int, draws: np.ndarray
    ) -> None:
        """``n_pairs`` pairs of one pool: row ``picked`` against distinct others (by ``draws``)."""
        self.n_learned += learn_pool_pairs(
            self.weights, features, picked, n_pairs, draws, self.learning_rate
        )

    def weight_vector(self) -> np.ndarray:
        return self.weights

    def intercept(self) -> float:
        return 0.0

    def add(self, weights: np.ndarray, intercept: float, learned: int) -> None:
        """Add another copy's updates (it has no intercept)."""
        self.weights += weights
        self.n_learned += learned


class TaskHeads:
    """All heads of the model: relevance, the funnel chain, like, and rating.

    Parameters
    ----------
    feature_names
        Names of the shared feature columns, in order.
    mode
        ``"chain"`` (ESMM-style conditional heads) or ``"single"`` (independent heads).
    learning_rate, l2
        SGD step and L2 penalty of every head.
    rating_offset
        Stars the rating head predicts around (it learns the residual).
    relevance_prior
        Starting weights of the relevance head (by feature name).
    """

    def __init__(
        self,
        feature_names: list[str],
        mode: str = "chain",
        learning_rate: float = 0.05,
        l2: float = 0.0,
        rating_offset: float = 3.5,
        relevance_prior: dict[str, float] | None = None,
    ) -> None:
        if mode not in TASK_MODES:
            raise ValueError(f"mode must be one of {TASK_MODES}, got {mode!r}")
        self.mode = mode
        self.rating_offset = rating_offset
        names = list(feature_names)
        self.relevance = PairwiseRanker(names, learning_rate, relevance_prior)
        self.click = _logistic(names, learning_rate, l2)
        # chain: conditionals; single: the task itself on all funnel events.
        self.add_to_cart = _logistic(names, learning_rate, l2)
        self.purchase = _logistic(names, learning_rate, l2)
        self.like = _logistic(names, learning_rate, l2)
        self.rating = _least_squares(names, learning_rate, l2)
        self._ordered = [getattr(self, name) for name in _ORDER]
        self._stack_weights = np.zeros((len(_ORDER), len(names)))
        self._stack_intercepts = np.zeros(len(_ORDER))
        self._stack_versions = [-1] * len(_ORDER)
        # The last row learned and its dict (see _as_dict); not pickled.
        self._row_dict: tuple[np.ndarray, dict[str, float]] | None = None

    def learn_relevance(self, difference: np.ndarray) -> None:
        """A pairwise example: features of the engaged item minus a passed-over one."""
        self.relevance.learn(difference)

    def learn_relevance_pool(
        self, features: np.ndarray, picked: int, n_pairs: int, draws: np.ndarray
    ) -> None:
        """Pairwise examples from one candidate pool: the engaged row against ``n_pairs`` others."""
        self.relevance.learn_pool(features, picked, n_pairs, draws)

    def _as_dict(self, row: np.ndarray) -> dict[str, float]:
        """The row as River's dict, built once per row: several heads learn the same one."""
        cached = self._row_dict
        if cached is None or cached[0] is not row:
            cached = self._row_dict = (
                row,
                dict(zip(self.relevance.names, row.tolist(), strict=True)),
            )
        return cached[1]

    def drop_cached_row(self) -> None:
        """Forget the last row learned (kept as a dict for the next head): it may be
        about a user who asked to be forgotten."""
        self._row_dict = None

    def learn_labels(self, row: np.ndarray, labels: dict[str, int]) -> None:
        """Learn the task labels of one impression or rating (see :mod:`stream.tasks`)."""
        x = self._as_dict(row)
        if "click" in labels:
            clicked, carted = bool(labels["click"]), bool(labels["add_to_cart"])
            purchased = bool(labels["purchase"])
            self.click.learn(x, clicked)
            if self.mode == "chain":
                if clicked:
                    self.add_to_cart.learn(x, carted)
                if carted:
                    self.purchase.learn(x, purchased)
            else:
                self.add_to_cart.learn(x, carted)
                self.purchase.learn(x, purchased)
        if "like" in labels:
            self.like.learn(x, bool(labels["like"]))

    def learn_rating(self, row: np.ndarray, stars: float) -> None:
        self.rating.learn(self._as_dict(row), stars - self.rating_offset)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_row_dict": None}

    def __setstate__(self, state: dict) -> None:
        # Snapshots from when the stack was (features, heads): rebuilt on first use.
        state.setdefault("_row_dict", None)
        self.__dict__.update(state)
        if self._stack_weights.shape[0] != len(_ORDER):
            self._stack_weights = np.zeros((len(_ORDER), len(self.relevance.names)))
            self._stack_versions = [-1] * len(_ORDER)

    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """All heads' weights as one matrix (a row per head of ``_ORDER``) and their intercepts.

        One matrix product then scores every head at once, which matters when
        a single event's row is scored: per-head products cost more in numpy
        call overhead than in arithmetic. Only the rows of heads that have
        learned since the last call are refreshed.
        """
        versions = self._stack_versions
        for row, head in enumerate(self._ordered):
            if versions[row] != head.n_learned:
                self._stack_weights[row] = head.weight_vector()
                self._stack_intercepts[row] = head.intercept()
                versions[row] = head.n_learned
        return self._stack_weights, self._stack_intercepts

    def parameters(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every head's weights (a row per head of ``HEAD_ORDER``), intercepts and
        examples learned, as copies: what the scale-out sync diffs."""
        weights, intercepts = self._stacked()
        learned = np.array([head.n_learned for head in self._ordered], dtype=np.int64)
        return weights.copy(), intercepts.copy(), learned

    def add(self, weights: np.ndarray, intercepts: np.ndarray, learned: np.ndarray) -> None:
        """Add another copy's updates, in :meth:`parameters`' layout (delta-sum: every copy
        ends up with the sum of all copies' SGD steps)."""
        for row, head in enumerate(self._ordered):
            if learned[row] or weights[row].any() or intercepts[row]:
                head.add(weights[row], float(intercepts[row]), int(learned[row]))

    def scoring_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What a compiled ranking needs: the stacked weights (a row per head),
        intercepts, and which heads predict (1.0 per row of ``_ORDER`` that has
        learned, else 0.0; see ``stream.ranking_pass``).
        """
        weights, intercepts = self._stacked()
        return weights, intercepts, self._known()[0]

    def known_tasks(self) -> list[tuple[str, int]]:
        """(task, row of ``_ORDER``) of every head that predicts, as :meth:`predict` keys them."""
        return self._known()[1]

    def _known(self) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Which heads predict now: as a mask over ``_ORDER`` and as (task, row) pairs."""
        return _known_heads(
            bool(self.click.n_learned), bool(self.like.n_learned), bool(self.rating.n_learned)
        )

    def predict_one(self, row: np.ndarray) -> dict[str, float]:
        """:meth:`predict` of one feature row, as floats (without ``relevance_logit``).

        One event's row is scored for every event learned, so this path does
        one matrix product and then plain float arithmetic: numpy's per-call
        overhead would cost more than the arithmetic.
        """
        weights, intercepts = self._stacked()
        raw = (weights @ row + intercepts).tolist()
        p = [1.0 / (1.0 + math.exp(-min(max(x, -30.0), 30.0))) for x in raw[:5]]
        out = {"relevance": p[0]}
        if self.click.n_learned:
            click = p[1]
            if self.mode == "chain":
                cart = click * p[2]
                purchase = cart * p[3]
            else:
                cart, purchase = p[2], p[3]
            out.update(click=click, add_to_cart=cart, purchase=purchase)
        if self.like.n_learned:
            out["like"] = p[4]
        if self.rating.n_learned:
            out["rating"] = min(max(raw[5] + self.rating_offset, 1.0), 5.0)
        return out

    def predict(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Every head's prediction for each row of ``matrix``.

        Funnel tasks appear once the funnel has been seen, ``like`` and
        ``rating`` once ratings have: a head that never learned says nothing.
        """
        weights, intercepts = self._stacked()
        raw = matrix @ weights.T + intercepts  # columns follow _ORDER
        logits = raw[:, :5]
        p = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        out = {"relevance": p[:, 0], "relevance_logit": logits[:, 0]}
        if self.click.n_learned:
            click = p[:, 1]
            if self.mode == "chain":
                cart = click * p[:, 2]
                purchase = cart * p[:, 3]
            else:
                cart, purchase = p[:, 2], p[:, 3]
            out.update(click=click, add_to_cart=cart, purchase=purchase)
        if self.like.n_learned:
            out["like"] = p[:, 4]
        if self.rating.n_learned:
            out["rating"] = np.clip(raw[:, 5] + self.rating_offset, 1.0, 5.0)
        return out


@functools.cache
def _known_heads(
    funnel: bool, like: bool, rating: bool
) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """The known-heads mask and (task, column) list for which heads have learned."""
    mask = np.array([1.0, funnel, funnel, funnel, like, rating], dtype=float)
    mask.setflags(write=False)
    return mask, [(name, column) for column, name in enumerate(_ORDER) if mask[column]]


#: Head order in the stacked weight matrix; the last is the linear rating head.
HEAD_ORDER = ("relevance", "click", "add_to_cart", "purchase", "like", "rating")
_ORDER = HEAD_ORDER
