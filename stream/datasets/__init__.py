"""Event streams to learn from: MovieLens-100K, a planted synthetic stream, or a file.

Every source ends as the same :class:`Dataset`: contract events in time order
plus the catalog and user profiles, so the evaluator, the producer and the
tests never care where a stream came from.

>>> data = load_dataset("synthetic", seed=1)
>>> len(data.events), data.events[0].timestamp <= data.events[-1].timestamp
(50000, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.errors import DatasetError
from stream.events import Event, Item, UserProfile

__all__ = ["Dataset", "DatasetError", "load_dataset"]


@dataclass
class Dataset:
    """A replayable stream with its side information.

    Parameters
    ----------
    name
        Where it came from (``"ml-100k"``, ``"synthetic"``, a file name).
    events
        Contract events in time order (non-decreasing ``timestamp``).
    items
        The catalog; an item's ``timestamp`` is when it became available.
    profiles
        User side features (age, gender, ...), for cold start.
    truth
        What the source knows about how the stream was made: the synthetic
        generator's :class:`~stream.datasets.synthetic.SyntheticTruth`
        (which its oracle reads); None for recorded data. Not compared.
    """

    name: str
    events: list[Event]
    items: list[Item] = field(default_factory=list)
    profiles: list[UserProfile] = field(default_factory=list)
    truth: Any = field(default=None, compare=False, repr=False)


def load_dataset(
    spec: str,
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load a dataset by name or path.

    Parameters
    ----------
    spec
        ``"ml-100k"`` (downloaded once, then cached), ``"synthetic"`` (the
        generator's defaults), ``"synthetic:key=value,..."`` (the generator
        with sizes of its own, e.g.
        ``"synthetic:users=1000000,items=200000,events=2000000"``; keys
        ``users``, ``items``, ``events``, ``genres``, ``domains``, ``seed``,
        ``sampler``, see :func:`~stream.datasets.synthetic.parse_synthetic_spec`)
        or the path of a ``.jsonl`` / ``.csv`` event file.
        Two-domain variants for cross-domain transfer: ``"synthetic-2domain"``
        (the generator with ``n_domains=2``: tastes shared across domains) and
        ``"ml-100k-domains"`` (MovieLens-100K split by each movie's first genre,
        see :func:`~stream.datasets.movielens.split_by_genre`).
    seed
        Seed of the synthetic generator (a ``seed=`` in the spec wins); the
        other sources ignore it.
    cache_dir
        Where downloads are kept; default ``$STREAMREC_CACHE_DIR`` or
        ``~/.cache/streamrec``.
    progress
        Called with a short line of text before each slow step.

    Raises
    ------
    DatasetError
        If the spec names nothing known, or the source cannot be fetched,
        verified or parsed.
    """
    # Imported here so that loading one source never imports the others.
    if spec in ("ml-100k", "ml-100k-domains"):
        from stream.datasets.movielens import load_movielens_100k, split_by_genre

        data = load_movielens_100k(cache_dir=cache_dir, progress=progress)
        return split_by_genre(data) if spec == "ml-100k-domains" else data
    if spec in ("synthetic", "synthetic-2domain"):
        from stream.datasets.synthetic import generate_synthetic

        if progress is not None:
            progress(f"generating the synthetic stream (seed {seed})...")
        if spec == "synthetic":
            return generate_synthetic(seed=seed)
        data = generate_synthetic(seed=seed, n_domains=2)
        data.name = spec
        return data
    if spec.startswith("synthetic:"):
        from stream.datasets.synthetic import generate_synthetic, parse_synthetic_spec

        arguments = {"seed": seed, **parse_synthetic_spec(spec)}
        if progress is not None:
            progress(f"generating the synthetic stream {spec!r} (seed {arguments['seed']})...")
        try:
            data = generate_synthetic(**arguments)
        except DatasetError as exc:
            raise DatasetError(f"dataset spec {spec!r}: {exc}") from None
        data.name = spec
        return data
    if Path(spec).suffix.lower() in (".jsonl", ".csv"):
        from stream.datasets.files import load_path

        return load_path(Path(spec), progress=progress)
    raise DatasetError(
        f"unknown dataset {spec!r}: expected 'ml-100k', 'ml-100k-domains', 'synthetic', "
        "'synthetic:key=value,...', 'synthetic-2domain' or a .jsonl/.csv path"
    )
