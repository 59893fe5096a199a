"""Online matrix factorisation learned with BPR and sampled negatives.

Implicit feedback has no explicit zeros, so each positive engagement (u, i)
is contrasted with a few items the user did not pick at that moment, sampled
at random from the catalog. One SGD step on the BPR loss
``-log sigmoid(s(u,i) - s(u,j))`` per negative ``j`` moves the user towards
``i`` and away from the ``j``s. Negative feedback (a dislike) pushes
``s(u,i)`` down pointwise.

Vectors live in numpy arrays indexed by dense ids, so ranking a batch of
users is one matrix product.
"""

from __future__ import annotations

import numpy as np

from stream.entities import grown


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class OnlineMF:
    """User and item embeddings plus item biases, updated one event at a time.

    Parameters
    ----------
    n_factors
        Embedding dimension.
    learning_rate
        SGD step size.
    regularization
        L2 penalty on the parameters touched by a step.
    n_negatives
        Items sampled as negatives per positive engagement.
    init_scale
        Standard deviation of the random initial vectors.
    seed
        Seed of the generator behind initial vectors and negative sampling.
    """

    def __init__(
        self,
        n_factors: int = 32,
        learning_rate: float = 0.05,
        regularization: float = 0.002,
        n_negatives: int = 4,
        init_scale: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.n_negatives = n_negatives
        self.init_scale = init_scale
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._users = np.zeros((0, n_factors))
        self._items = np.zeros((0, n_factors))
        self._item_bias = np.zeros(0)
        self._n_items = 0
        self._uniform = np.zeros(0)
        self._uniform_at = 0

    # ------------------------------------------------------------------ tables

    def add_user(self, user: int) -> None:
        """Give row ``user`` a fresh random vector (also after the row was freed)."""
        self._users = grown(self._users, user + 1)
        self._users[user] = self._rng.normal(0.0, self.init_scale, self.n_factors)

    def add_item(self, item: int) -> None:
        self._items = grown(self._items, item + 1)
        self._item_bias = grown(self._item_bias, item + 1)
        self._items[item] = self._rng.normal(0.0, self.init_scale, self.n_factors)
        self._item_bias[item] = 0.0
        self._n_items = max(self._n_items, item + 1)

    def forget_user(self, user: int) -> None:
        if user < self._users.shape[0]:
            self._users[user] = 0.0

    # ------------------------------------------------------------------ learning

    def learn(self, user: int, item: int, weight: float) -> None:
        """One SGD step for an engagement of ``weight`` (negative for a dislike)."""
        lr, reg = self.learning_rate, self.regularization
        p = self._users[user]
        if weight < 0:
            q = self._items[item]
            grad = float(_sigmoid(p @ q + self._item_bias[item])) * min(-weight, 1.0)
            p_old = p.copy()
            p -= lr * (grad * q + reg * p)
            q -= lr * (grad * p_old + reg * q)
            self._item_bias[item] -= lr * grad
            return
        negatives = self._draw_negatives(item)
        if negatives.size == 0:
            return
        q_pos = self._items[item]
        q_neg = self._items[negatives]
        diff = q_pos - q_neg
        bias = self._item_bias
        margin = diff @ p + (bias[item] - bias[negatives])
        # d/dx -log sigmoid(x) = -sigmoid(-x); strong engagements step further.
        grad = (1.0 / (1.0 + np.exp(np.clip(margin, -30.0, 30.0)))) * min(weight, 3.0)
        total = float(grad.sum())
        p_old = p.copy()
        p += lr * (grad @ diff - reg * p)
        q_pos += lr * (total * p_old - reg * q_pos)
        self._items[negatives] = q_neg - lr * (np.outer(grad, p_old) + reg * q_neg)
        bias[item] += lr * (total - reg * bias[item])
        bias[negatives] -= lr * (grad + reg * bias[negatives])

    def _draw_negatives(self, item: int) -> np.ndarray:
        """``n_negatives`` uniform item rows other than ``item``.

        Uniform draws come from a pre-drawn block: one generator call per
        thousand events instead of one per event.
        """
        if self._uniform_at + self.n_negatives > self._uniform.shape[0]:
            self._uniform = self._rng.random(4096)
            self._uniform_at = 0
        draws = self._uniform[self._uniform_at : self._uniform_at + self.n_negatives]
        self._uniform_at += self.n_negatives
        negatives = (draws * self._n_items).astype(np.int64)
        return negatives[negatives != item]

    # ------------------------------------------------------------------ scoring

    def score(self, users: np.ndarray, n_items: int) -> np.ndarray:
        """Scores, shape ``(len(users), n_items)``: one matrix product."""
        return self._users[users] @ self._items[:n_items].T + self._item_bias[:n_items]

    def user_vector(self, user: int) -> np.ndarray:
        return self._users[user]

    def item_vectors(self, n_items: int) -> np.ndarray:
        return self._items[:n_items]
