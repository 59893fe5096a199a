"""The maps cold-start priors are fitted with: content to item embedding, segment to user vector.

A new item has no interactions, so its MF embedding is noise and no item-CF
row exists. But its catalog features (genres, title words) say what kind of
item it is, and the warm items show how features map to embeddings.
:class:`ContentEmbeddingMap` learns that map online, as a ridge regression
from an item's content vector to its MF embedding and bias, refitted from
the warm items every so many events. A cold item's embedding is then
``prior(content) + what its own few events taught it``: it starts near the
warm items that share its features and moves off as it earns a history.

A new user has no history either; when their profile places them in a
demographic segment (gender and age band, :mod:`stream.segments`),
:class:`SegmentVectors` gives the mean MF vector of the segment's warm users
as their starting point.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> content = rng.random((200, 6))
>>> embeddings = content @ rng.normal(size=(6, 3))
>>> fitted = ContentEmbeddingMap(ridge=1e-3)
>>> fitted.fit(content, embeddings)
True
>>> bool(np.allclose(fitted.predict(content[:2]), embeddings[:2], atol=1e-2))
True
"""

from __future__ import annotations

import numba
import numpy as np

# The fits below are small (a few thousand items by ~100 mostly-zero content
# columns) and run every few thousand events on the learning path. Through
# BLAS they would wake its thread pool, whose threads then spin for a while
# on the other cores: more CPU burnt than the arithmetic itself. Compiled
# loops that skip zeros do the same work on one core in well under a millisecond.


@numba.njit(cache=True)
def _cross_products(x, y):  # noqa: ANN001, ANN202
    """``x.T @ x`` and ``x.T @ y``, skipping the zeros of ``x`` (one-hot and bag-of-words rows)."""
    d, e = x.shape[1], y.shape[1]
    xx = np.zeros((d, d))
    xy = np.zeros((d, e))
    nonzero = np.empty(d, dtype=np.int64)
    for i in range(x.shape[0]):
        n = 0
        for a in range(d):
            if x[i, a] != 0.0:
                nonzero[n] = a
                n += 1
        for p in range(n):
            a = nonzero[p]
            xa = x[i, a]
            for q in range(n):
                b = nonzero[q]
                xx[a, b] += xa * x[i, b]
            for c in range(e):
                xy[a, c] += xa * y[i, c]
    return xx, xy


@numba.njit(cache=True)
def _cholesky_solve(a, b):  # noqa: ANN001, ANN202
    """Solve ``a @ w = b`` for a symmetric positive definite ``a`` (Cholesky, in place copies)."""
    d = a.shape[0]
    low = np.zeros((d, d))
    for j in range(d):
        total = a[j, j]
        for k in range(j):
            total -= low[j, k] * low[j, k]
        low[j, j] = np.sqrt(total)
        for i in range(j + 1, d):
            total = a[i, j]
            for k in range(j):
                total -= low[i, k] * low[j, k]
            low[i, j] = total / low[j, j]
    w = b.copy()
    for c in range(b.shape[1]):
        for i in range(d):  # forward: low @ z = b
            total = w[i, c]
            for k in range(i):
                total -= low[i, k] * w[k, c]
            w[i, c] = total / low[i, i]
        for i in range(d - 1, -1, -1):  # backward: low.T @ w = z
            total = w[i, c]
            for k in range(i + 1, d):
                total -= low[k, i] * w[k, c]
            w[i, c] = total / low[i, i]
    return w


@numba.njit(cache=True)
def _sparse_rows_times(x, w):  # noqa: ANN001, ANN202
    """``x @ w``, skipping the zeros of ``x``."""
    out = np.zeros((x.shape[0], w.shape[1]))
    for i in range(x.shape[0]):
        for a in range(x.shape[1]):
            xa = x[i, a]
            if xa != 0.0:
                for c in range(w.shape[1]):
                    out[i, c] += xa * w[a, c]
    return out


class ContentEmbeddingMap:
    """Ridge regression from content vectors to embeddings, with an unpenalised intercept.

    Parameters
    ----------
    ridge
        L2 penalty on the weights (the intercept is not penalised).
    min_samples
        Warm items needed before a fit is trusted; fewer and :meth:`fit` keeps
        the previous map (or none).
    """

    def __init__(self, ridge: float = 1.0, min_samples: int = 20) -> None:
        self.ridge = ridge
        self.min_samples = min_samples
        self._weights: np.ndarray | None = None  # (content dims, embedding dims)
        self._x_mean: np.ndarray | None = None
        self._y_mean: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._weights is not None

    def fit(self, content: np.ndarray, embeddings: np.ndarray) -> bool:
        """Refit from ``content`` (rows: warm items) to their ``embeddings``; True if fitted."""
        n = content.shape[0]
        if n < self.min_samples:
            return False
        content = np.ascontiguousarray(content, dtype=np.float64)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float64)
        x_mean = content.mean(axis=0)
        y_mean = embeddings.mean(axis=0)
        # Centred cross products from raw ones, so the zeros stay zeros:
        # (X - m)'(X - m) = X'X - n m m',  (X - m)'(Y - v) = X'Y - n m v'.
        xx, xy = _cross_products(content, embeddings)
        gram = xx - n * np.outer(x_mean, x_mean)
        gram[np.diag_indices_from(gram)] += self.ridge
        self._weights = _cholesky_solve(gram, xy - n * np.outer(x_mean, y_mean))
        self._x_mean, self._y_mean = x_mean, y_mean
        return True

    def predict(self, content: np.ndarray) -> np.ndarray:
        """Predicted embeddings of ``content`` rows (call only when :attr:`fitted`)."""
        assert self._weights is not None and self._x_mean is not None
        width = self._weights.shape[0]
        x = np.zeros((content.shape[0], width))
        n = min(width, content.shape[1])
        # The content space only widens (a new genre adds a column): columns
        # unknown to the fit carry no weight, missing ones count as zero.
        x[:, :n] = content[:, :n]
        offset = self._y_mean - _sparse_rows_times(self._x_mean[None, :], self._weights)[0]
        return _sparse_rows_times(x, self._weights) + offset


class SegmentVectors:
    """Mean MF vector of each demographic segment's warm users: a new user's starting point."""

    def __init__(self) -> None:
        self._means: dict[str, np.ndarray] = {}

    def fit(self, segments: list[str], vectors: np.ndarray, min_users: int = 3) -> None:
        """Recompute the means from ``vectors[n]``, the vector of a user in ``segments[n]``."""
        means: dict[str, np.ndarray] = {}
        if segments:
            names, codes = np.unique(np.array(segments), return_inverse=True)
            sums = np.zeros((names.shape[0], vectors.shape[1]))
            np.add.at(sums, codes, vectors)
            counts = np.bincount(codes, minlength=names.shape[0])
            for code, name in enumerate(names.tolist()):
                if counts[code] >= min_users:
                    means[name] = sums[code] / counts[code]
        self._means = means

    def mean(self, segment: str | None) -> np.ndarray | None:
        return None if segment is None else self._means.get(segment)

    def __len__(self) -> int:
        return len(self._means)
