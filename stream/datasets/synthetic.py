"""A seeded synthetic multi-behaviour stream with known, planted structure.

Real logs rarely say why a user did something; this generator does, so a test
or a benchmark can ask whether a model found what was planted, and how far it
is from the best any model could do (:class:`SyntheticOracle`). What is
planted (all of it driven by one ``np.random.default_rng`` and deterministic
per seed):

Users and items
    Each item has a primary genre (and, for 40 % of items, a secondary one), a
    latent vector, a Zipf-like popularity rank, a price and a domain. Each user
    has a preference vector over genres (Dirichlet, so usually one or two
    favourite genres), a latent vector, an activity level (log-normal: a few
    heavy users), a price sensitivity and a preference over domains.
Affinity
    ``topic`` = user genre preference . item genres, ``latent`` = user vector .
    item vector, each standardised to mean 0, sd 1 over (user, item) pairs.
Sessions
    A session is one user, one domain and a run of distinct item views drawn
    by a Plackett-Luce draw on ``log popularity + 1.0 topic + 0.5 latent``.
    Every event carries ``context["session_id"]``.
Funnel, per view (``view`` -> ``click`` -> ``add_to_cart`` -> ``purchase``)
    ``P(click) = sigmoid(-2.8 + 1.5 topic + 0.3 latent)``: mostly genre taste.
    ``P(add_to_cart | click) = sigmoid(-1.6 + 0.4 topic + 1.2 latent)``: mostly
    personal taste. ``P(purchase | add_to_cart) = sigmoid(0.4 latent - 1.5
    sensitivity * price_z)``: the item's (standardised log) price against the
    user's price sensitivity. So the tasks are related but not the same. The
    steps that follow one view happen in its session, each after the step
    before it and before the session's next view. With the defaults about 40 %
    of views are clicked, half the clicks carted and half the carts bought.
Ratings and dislikes
    A clicked item is rated (``rating``) with probability ``rating_probability``:
    ``round(2 + 0.7 topic + 0.7 latent + noise(sd 0.8))`` clipped to 1..5. A
    viewed, unclicked item is disliked with probability ``2 *
    dislike_probability * sigmoid(-1.5 topic)``: the less it fits the user's
    genres, the likelier.
Values
    ``view``: dwell seconds (longer for higher topic affinity); ``purchase``:
    the item's price; ``rating``: the rating.
Drift
    At ``drift_at`` of the stream's time span, ``drift_fraction`` of the users
    draw a new genre preference (their latent vector stays).
Releases and sign-ups
    ``new_item_fraction`` of the items are released during the stream: an
    item's catalog ``timestamp`` is its release, and no event touches it
    before. Likewise ``new_user_fraction`` of the users sign up during the
    stream (profile ``timestamp``) and have no events before.
Profiles carry cold-start signal
    ``age``, ``gender`` and ``occupation`` depend on the user's favourite genre
    (before drift); price sensitivity falls with age.
Domains
    With ``n_domains > 1`` each item belongs to one domain (``"movies"``,
    ``"books"``, ...; the event's ``domain`` and the item's ``domain``
    feature), and a user's tastes are the same in every domain.
Catalog features
    ``title`` (words of the item's genres), ``genres``, ``year``, ``price``.

Two samplers draw the views; the funnel, times, values and records after them
are one code path.

``sampler="dense"`` (catalogs up to 1,000 items under ``"auto"``)
    Exactly as above: the genre preference is a Dirichlet(0.3) over all
    genres, and a session's Plackett-Luce draw runs over every available item
    of its domain. Its cost is sessions x items, so it cannot reach a large
    catalog.
``sampler="genre"`` (larger catalogs under ``"auto"``)
    The same planted structure, drawn per session without any users x items
    array. Genres have an *appeal* (Zipf, exponent 0.6, over a random order of
    the genres). A user has four favourite genres drawn by appeal (with
    repeats) and Dirichlet(0.3) weights over them; their genre preference is
    ``0.9 * favourite weights + 0.1 * appeal``. A session first picks its
    genre: with chance 0.1 by appeal (exploring), else a favourite by weight.
    Its views are then the Plackett-Luce draw above over the items whose
    *primary* genre it is (popularity is Zipf by rank inside each genre); a
    genre of more than 256 items offers a shortlist: its 128 most popular
    items and a window of 128 from its tail at a random offset. ``latent`` is
    standardised over a sample of 100,000 random (user, item) pairs; ``topic``
    over a sample of 100,000 pairs as sessions form them (a user by activity,
    a genre as the session would pick it, an item of that genre), then put on
    the scale the dense sampler's views have (mean 1.3, sd 1.4), so the funnel
    keeps its rates. Drift redraws the favourites and weights. By default
    ``new_item_fraction`` is 0.1 here (0.2 dense).

With ``n_genres`` left out there are ``max(8, n_items // 100)`` genres: 8 up
to 899 items, 2,000 at 200,000.

The generator keeps what it drew (:class:`SyntheticTruth`, on
``Dataset.truth``): each event's session, and each session's user, start,
domain, genre and shortlist offset, so the distribution each view was drawn
from can be recomputed.

>>> data = generate_synthetic(n_users=50, n_items=40, n_events=300, seed=3)
>>> len(data.events), len(data.items), len(data.profiles)
(300, 40, 50)
>>> parse_synthetic_spec("synthetic:users=1M,items=200k,events=2_000_000")
{'n_users': 1000000, 'n_items': 200000, 'n_events': 2000000}
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from stream.datasets import Dataset
from stream.errors import DatasetError
from stream.events import DEFAULT_DOMAIN, Event, Item, UserProfile
from stream.model import RecommendedItem, Recommender

__all__ = [
    "SyntheticOracle",
    "SyntheticTruth",
    "generate_synthetic",
    "parse_synthetic_spec",
]

_GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("Fist", "Fury", "Strike", "Mission", "Thunder", "Bullet", "Chase", "Steel"),
    "comedy": ("Laugh", "Wacky", "Party", "Pickle", "Blunder", "Giggle", "Prank", "Sunny"),
    "drama": ("Silence", "Letters", "Winter", "River", "Memory", "Promise", "Daughter", "Shadow"),
    "scifi": ("Galaxy", "Robot", "Quantum", "Orbit", "Android", "Nebula", "Signal", "Future"),
    "romance": ("Kiss", "Heart", "Paris", "Wedding", "Moonlight", "Roses", "Sweetheart", "Dance"),
    "horror": ("Blood", "Haunted", "Curse", "Crypt", "Scream", "Ghoul", "Midnight", "Bones"),
    "documentary": ("Truth", "Planet", "Ocean", "Journey", "Inside", "History", "Wild", "Nation"),
    "fantasy": ("Dragon", "Wizard", "Kingdom", "Sword", "Elven", "Quest", "Crown", "Spell"),
}
_DOMAIN_NAMES = ("movies", "books", "music", "games", "podcasts", "news")
_OCCUPATIONS = (
    "student", "engineer", "artist", "teacher", "doctor", "writer",
    "programmer", "salesman", "retired", "lawyer", "scientist", "homemaker",
)  # fmt: skip
_DAY = 86_400.0
#: Event-type codes of the simulation arrays, in funnel order.
_TYPES = ("view", "click", "add_to_cart", "purchase", "rating", "dislike")
#: Where in a view's dwell each follow-up happens (fractions of the dwell),
#: so the funnel steps of one view come in order and before the next view.
_STEP_AT = {"click": 0.3, "add_to_cart": 0.6, "purchase": 0.9, "rating": 0.95, "dislike": 0.5}

SAMPLERS = ("auto", "dense", "genre")
#: ``sampler="auto"`` uses the dense sampler up to this many items.
DENSE_MAX_ITEMS = 1000
#: Genre sampler: a genre of more items offers a session a shortlist of this many.
SHORTLIST = 256
#: Genre sampler: favourite genres per user, and the share of sessions that explore.
FAVOURITE_GENRES = 4
EXPLORE_SHARE = 0.1
GENRE_APPEAL_EXPONENT = 0.6
#: Genre sampler: the scale of ``topic`` (that of the dense sampler's views).
_VIEW_TOPIC_MEAN, _VIEW_TOPIC_SD = 1.3, 1.4
_STANDARDISE_PAIRS = 100_000
#: Arrays of one simulation chunk hold about this many (session, candidate) cells.
_CHUNK_CELLS = 2_000_000


def generate_synthetic(
    n_users: int = 2000,
    n_items: int = 500,
    n_events: int = 50_000,
    seed: int = 0,
    n_domains: int = 1,
    *,
    n_genres: int | None = None,
    sampler: str = "auto",
    latent_dim: int = 8,
    zipf_exponent: float = 1.0,
    mean_session_views: float = 5.0,
    drift_at: float = 0.5,
    drift_fraction: float = 0.3,
    new_item_fraction: float | None = None,
    new_user_fraction: float = 0.2,
    rating_probability: float = 0.2,
    dislike_probability: float = 0.05,
    start_time: float = 1_700_000_000.0,
    duration_days: float = 30.0,
) -> Dataset:
    """Generate a multi-behaviour event stream with planted structure (see the module).

    Parameters
    ----------
    n_users, n_items
        Sizes of the population and the catalog.
    n_events
        Exact number of events in the stream.
    seed
        Everything is a function of the seed and the other arguments.
    n_domains
        1: every event is in the default domain. More: items are split among
        domains ``"movies"``, ``"books"``, ``"music"``, ... that share tastes.
    n_genres
        Number of genres (item topics); None: ``max(8, n_items // 100)``. The
        first 8 have names and title words.
    sampler
        ``"dense"``, ``"genre"`` or ``"auto"`` (dense up to
        ``DENSE_MAX_ITEMS`` items): how views are drawn (see the module).
    latent_dim
        Size of the personal latent vectors of users and items.
    zipf_exponent
        Item popularity weight is ``rank ** -zipf_exponent`` (rank in the
        catalog; with the genre sampler, rank inside the item's genre).
    mean_session_views
        Mean number of distinct items viewed in a session (at least 1).
    drift_at, drift_fraction
        When (fraction of the time span) tastes shift, and for what share of users.
    new_item_fraction, new_user_fraction
        Share of items released, and of users signing up, during the stream.
        ``new_item_fraction=None``: 0.2 with the dense sampler, 0.1 with the
        genre sampler.
    rating_probability
        Chance that a clicked item is rated.
    dislike_probability
        A viewed, unclicked item is disliked with chance ``2 * dislike_probability *
        sigmoid(-1.5 topic)``: about ``0.75 * dislike_probability`` with the defaults.
    start_time, duration_days
        Epoch seconds of the stream's start, and its nominal length in days.

    Returns
    -------
    Dataset
        Events in time order, ids ``syn<seed>-<index>``; users ``u<n>``
        (numbered in sign-up order), items ``i<n>``; ``truth`` is the
        :class:`SyntheticTruth` of the stream.

    Raises
    ------
    DatasetError
        If an argument is out of range.
    """
    _require(sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    _require(n_items >= 1, f"n_items must be at least 1, got {n_items}")
    if n_genres is None:
        n_genres = max(8, n_items // 100)
    if sampler == "auto":
        sampler = "dense" if n_items <= DENSE_MAX_ITEMS else "genre"
    if new_item_fraction is None:
        new_item_fraction = 0.2 if sampler == "dense" else 0.1
    for name, count in (
        ("n_users", n_users),
        ("n_domains", n_domains),
        ("n_genres", n_genres),
        ("latent_dim", latent_dim),
    ):
        _require(count >= 1, f"{name} must be at least 1, got {count}")
    _require(n_events >= 0, f"n_events must be >= 0, got {n_events}")
    for name, share in (
        ("drift_at", drift_at),
        ("drift_fraction", drift_fraction),
        ("new_item_fraction", new_item_fraction),
        ("new_user_fraction", new_user_fraction),
        ("rating_probability", rating_probability),
        ("dislike_probability", dislike_probability),
    ):
        _require(0.0 <= share <= 1.0, f"{name} must be in [0, 1], got {share}")
    _require(mean_session_views >= 1.0, "mean_session_views must be at least 1")
    _require(duration_days > 0.0 and start_time >= 0.0, "need duration_days > 0, start_time >= 0")
    rng = np.random.default_rng(seed)
    world_class: type[_World] | type[_GenreWorld] = _World if sampler == "dense" else _GenreWorld
    world = world_class.draw(
        rng, n_users, n_items, n_domains, n_genres, latent_dim, zipf_exponent,
        drift_fraction, new_item_fraction, new_user_fraction,
        start_time, duration_days * _DAY, drift_at,
    )  # fmt: skip
    stream_seed = int(rng.integers(2**63))
    events, sessions = _simulate_exactly(
        world, n_events, stream_seed, mean_session_views, rating_probability, dislike_probability
    )
    domain_names = _domain_names(n_domains)
    return Dataset(
        name="synthetic",
        events=_to_events(events, domain_names, f"syn{seed}"),
        items=_to_items(world, rng, domain_names),
        profiles=_to_profiles(world),
        truth=SyntheticTruth(world, sessions, events.session.astype(np.int32)),
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise DatasetError(f"generate_synthetic: {message}")


def _domain_names(n_domains: int) -> list[str]:
    if n_domains == 1:
        return [DEFAULT_DOMAIN]
    return [_DOMAIN_NAMES[d] if d < len(_DOMAIN_NAMES) else f"domain{d}" for d in range(n_domains)]


def _genre_names(n_genres: int) -> list[str]:
    named = list(_GENRE_WORDS)
    return [named[g] if g < len(named) else f"genre{g}" for g in range(n_genres)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- the spec

#: ``synthetic:key=value`` keys and the generator argument each sets.
_SPEC_KEYS = {
    "users": "n_users",
    "items": "n_items",
    "events": "n_events",
    "genres": "n_genres",
    "domains": "n_domains",
    "seed": "seed",
    "sampler": "sampler",
}
_COUNT = re.compile(r"(\d[\d_]*)([kKmM]?)")


def parse_synthetic_spec(spec: str) -> dict[str, Any]:
    """The generator's arguments named by a ``synthetic:key=value,...`` dataset spec.

    Keys: ``users``, ``items``, ``events``, ``genres``, ``domains``, ``seed``
    (whole numbers: digits, ``_`` allowed, an optional ``k`` or ``M``
    suffix) and ``sampler`` (``auto``, ``dense`` or ``genre``). Keys left out
    keep the generator's defaults. Ranges are checked by
    :func:`generate_synthetic`.

    Raises
    ------
    DatasetError
        If the spec is not of that form, names an unknown key twice or at
        all, or a value is not a whole number.
    """
    head, colon, body = spec.partition(":")
    if head != "synthetic" or not colon:
        raise DatasetError(f"dataset spec {spec!r}: expected 'synthetic:key=value,...'")
    if not body.strip():
        raise DatasetError(
            f"dataset spec {spec!r} names no key=value pair; plain 'synthetic' gives the defaults"
        )
    arguments: dict[str, Any] = {}
    for part in body.split(","):
        key, equals, value = (text.strip() for text in part.partition("="))
        if not equals or not key or not value:
            raise DatasetError(f"dataset spec {spec!r}: {part.strip()!r} is not key=value")
        name = _SPEC_KEYS.get(key)
        if name is None:
            raise DatasetError(
                f"dataset spec {spec!r}: unknown key {key!r}; known: {', '.join(_SPEC_KEYS)}"
            )
        if name in arguments:
            raise DatasetError(f"dataset spec {spec!r}: {key!r} given twice")
        if key == "sampler":
            arguments[name] = value
            continue
        match = _COUNT.fullmatch(value)
        if match is None:
            raise DatasetError(
                f"dataset spec {spec!r}: {key}={value!r} is not a whole number "
                "(digits, optionally with a k or M suffix)"
            )
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
        arguments[name] = int(match.group(1).replace("_", "")) * scale
    return arguments


# ----------------------------------------------------------------------------- the world


def _draw_item_facts(
    rng: np.random.Generator,
    primary: np.ndarray,
    n_domains: int,
    n_genres: int,
    new_item_fraction: float,
    start_time: float,
    duration: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Release times, domains, prices and standardised log prices of the items."""
    n_items = len(primary)
    n_new_items = min(int(round(n_items * new_item_fraction)), n_items - 1)
    release = start_time - rng.uniform(0, 365 * _DAY, size=n_items)
    new_items = rng.choice(n_items, size=n_new_items, replace=False)
    release[new_items] = start_time + rng.uniform(0.05, 0.85, size=n_new_items) * duration
    item_domain = rng.integers(n_domains, size=n_items)
    genre_base_price = rng.uniform(5.0, 40.0, size=n_genres)
    price = np.round(genre_base_price[primary] * np.exp(rng.normal(0, 0.4, n_items)), 2)
    price = np.maximum(price, 0.99)
    log_price = np.log(price)
    price_z = (log_price - log_price.mean()) / (log_price.std() + 1e-9)
    return release, item_domain, price, price_z


def _draw_user_facts(
    rng: np.random.Generator,
    n_users: int,
    latent_dim: int,
    n_domains: int,
    new_user_fraction: float,
    start_time: float,
    duration: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latent vectors, activity levels, sign-up times (ascending) and domain preferences."""
    user_vec = rng.normal(size=(n_users, latent_dim)) / math.sqrt(latent_dim)
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    n_new_users = min(int(round(n_users * new_user_fraction)), n_users - 1)
    signup = np.concatenate(
        [
            start_time - rng.uniform(0, 365 * _DAY, size=n_users - n_new_users),
            start_time + rng.uniform(0.05, 0.9, size=n_new_users) * duration,
        ]
    )
    signup.sort()
    domain_pref = rng.dirichlet(np.ones(n_domains), size=n_users)
    return user_vec, activity, signup, domain_pref


def _draw_profile_facts(
    rng: np.random.Generator, favourite: np.ndarray, n_genres: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Age, gender, occupation and price sensitivity, from each user's favourite genre.

    Profiles follow the favourite genre (before drift), so they place a new
    user; price sensitivity falls with age, so age also predicts purchases.
    """
    n_users = len(favourite)
    age_centre = rng.permutation(np.linspace(18, 60, n_genres))
    female_share = rng.uniform(0.2, 0.8, n_genres)
    favoured_job = rng.permutation(len(_OCCUPATIONS))[np.arange(n_genres) % len(_OCCUPATIONS)]
    age = np.clip(np.rint(rng.normal(age_centre[favourite], 6.0)), 13, 80).astype(int)
    female = rng.random(n_users) < female_share[favourite]
    occupation = np.where(
        rng.random(n_users) < 0.6,
        favoured_job[favourite],
        rng.integers(len(_OCCUPATIONS), size=n_users),
    )
    price_sensitivity = np.clip(
        np.exp(rng.normal(0.0, 0.25, n_users)) * (1.6 - age / 60.0), 0.2, None
    )
    return age, female, occupation, price_sensitivity


@dataclass(eq=False)
class _Sessions:
    """Who, when and where of each simulated session (one entry per session)."""

    start: np.ndarray
    user: np.ndarray
    domain: np.ndarray
    #: Genre sampler only: the session's genre and its shortlist's tail offset.
    genre: np.ndarray | None = None
    offset: np.ndarray | None = None


@dataclass(eq=False)
class _World:
    """The hidden truth of the dense sampler: who likes what, and when things exist."""

    start_time: float
    duration: float
    drift_time: float
    # users, indexed in sign-up order
    taste: np.ndarray  # (n_users, n_genres), rows sum to 1: before the drift
    taste_after: np.ndarray  # after the drift (equal to taste for users who keep theirs)
    user_vec: np.ndarray  # (n_users, latent_dim)
    activity_cum: np.ndarray  # cumulative activity weights, for prefix sampling
    signup: np.ndarray  # sign-up time, ascending
    domain_pref_cum: np.ndarray  # (n_users, n_domains), cumulative
    price_sensitivity: np.ndarray
    age: np.ndarray
    female: np.ndarray
    occupation: np.ndarray  # index into _OCCUPATIONS
    # items
    genres: list[list[int]]
    item_topic: np.ndarray  # (n_items, n_genres)
    item_vec: np.ndarray  # (n_items, latent_dim)
    log_popularity: np.ndarray
    release: np.ndarray
    item_domain: np.ndarray
    price: np.ndarray
    price_z: np.ndarray
    # standardisation of the two affinities
    topic_mean: float
    topic_sd: float
    latent_mean: float
    latent_sd: float

    sampler = "dense"

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n_users: int,
        n_items: int,
        n_domains: int,
        n_genres: int,
        latent_dim: int,
        zipf_exponent: float,
        drift_fraction: float,
        new_item_fraction: float,
        new_user_fraction: float,
        start_time: float,
        duration: float,
        drift_at: float,
    ) -> _World:
        # Items
        primary = rng.integers(n_genres, size=n_items)
        secondary = (primary + rng.integers(1, max(n_genres, 2), size=n_items)) % n_genres
        has_secondary = (rng.random(n_items) < 0.4) & (n_genres > 1)
        item_topic = np.zeros((n_items, n_genres))
        item_topic[np.arange(n_items), primary] = 1.0
        item_topic[np.flatnonzero(has_secondary), secondary[has_secondary]] += 0.5
        genres = [
            [int(p), int(s)] if two else [int(p)]
            for p, s, two in zip(primary, secondary, has_secondary, strict=True)
        ]
        item_vec = rng.normal(size=(n_items, latent_dim))
        rank = rng.permutation(n_items) + 1
        log_popularity = -zipf_exponent * np.log(rank)
        release, item_domain, price, price_z = _draw_item_facts(
            rng, primary, n_domains, n_genres, new_item_fraction, start_time, duration
        )

        # Users
        taste = rng.dirichlet(np.full(n_genres, 0.3), size=n_users)
        taste_after = taste.copy()
        drifting = rng.random(n_users) < drift_fraction
        taste_after[drifting] = rng.dirichlet(np.full(n_genres, 0.3), size=int(drifting.sum()))
        user_vec, activity, signup, domain_pref = _draw_user_facts(
            rng, n_users, latent_dim, n_domains, new_user_fraction, start_time, duration
        )
        age, female, occupation, price_sensitivity = _draw_profile_facts(
            rng, taste.argmax(axis=1), n_genres
        )

        # Standardise each affinity over (user, item) pairs, estimated on a
        # bounded sample of users so huge worlds stay cheap.
        sample = slice(0, max(1, min(n_users, 2_000_000 // n_items)))
        topic = taste[sample] @ item_topic.T
        latent = user_vec[sample] @ item_vec.T
        return cls(
            start_time=start_time,
            duration=duration,
            drift_time=start_time + drift_at * duration,
            taste=taste,
            taste_after=taste_after,
            user_vec=user_vec,
            activity_cum=np.cumsum(activity),
            signup=signup,
            domain_pref_cum=np.cumsum(domain_pref, axis=1),
            price_sensitivity=price_sensitivity,
            age=age,
            female=female,
            occupation=occupation,
            genres=genres,
            item_topic=item_topic,
            item_vec=item_vec,
            log_popularity=log_popularity,
            release=release,
            item_domain=item_domain,
            price=price,
            price_z=price_z,
            topic_mean=float(topic.mean()),
            topic_sd=float(topic.std()) or 1.0,
            latent_mean=float(latent.mean()),
            latent_sd=float(latent.std()) or 1.0,
        )

    @property
    def n_users(self) -> int:
        return len(self.taste)

    @property
    def n_items(self) -> int:
        return len(self.item_topic)

    @property
    def n_genres(self) -> int:
        return self.item_topic.shape[1]

    @property
    def width(self) -> int:
        """Candidates per session: the whole catalog."""
        return self.n_items

    def pick_genres(self, rng: np.random.Generator, sessions: _Sessions) -> None:
        """A dense session has no genre of its own (and draws nothing)."""

    def scores(
        self, sessions: _Sessions, rows: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """Plackett-Luce log-weights of the sessions ``rows`` over the whole catalog.

        Returns ``(candidates, score, topic, latent)``: ``candidates`` is None
        (column ``j`` is item ``j``); ``score`` is ``-inf`` where an item is
        not released yet or in another domain.
        """
        s_users = sessions.user[rows]
        after = (sessions.start[rows] >= self.drift_time)[:, None]
        taste = np.where(after, self.taste_after[s_users], self.taste[s_users])
        topic = (taste @ self.item_topic.T - self.topic_mean) / self.topic_sd
        latent = (self.user_vec[s_users] @ self.item_vec.T - self.latent_mean) / self.latent_sd
        score = self.log_popularity + 1.0 * topic + 0.5 * latent
        available = (self.release[None, :] <= sessions.start[rows, None]) & (
            self.item_domain[None, :] == sessions.domain[rows, None]
        )
        return None, np.where(available, score, -np.inf), topic, latent


@dataclass(eq=False)
class _GenreWorld:
    """The hidden truth of the genre sampler; no array is users x items or users x genres."""

    start_time: float
    duration: float
    drift_time: float
    # genres
    appeal: np.ndarray  # (n_genres,), sums to 1
    # users, indexed in sign-up order
    favourites: np.ndarray  # (n_users, FAVOURITE_GENRES) genre ids, before the drift
    favourite_weights: np.ndarray  # (n_users, FAVOURITE_GENRES), rows sum to 1
    favourites_after: np.ndarray  # after the drift
    favourite_weights_after: np.ndarray
    user_vec: np.ndarray  # (n_users, latent_dim), float32
    activity_cum: np.ndarray
    signup: np.ndarray
    domain_pref_cum: np.ndarray
    price_sensitivity: np.ndarray
    age: np.ndarray
    female: np.ndarray
    occupation: np.ndarray
    # items
    primary: np.ndarray
    secondary: np.ndarray  # equal to primary where the item has no second genre
    has_secondary: np.ndarray
    genre_items: np.ndarray  # item ids by primary genre, most popular first within one
    genre_start: np.ndarray  # (n_genres + 1,): genre g is genre_items[start[g]:start[g + 1]]
    item_vec: np.ndarray  # float32
    log_popularity: np.ndarray  # -zipf_exponent * log(rank inside the primary genre)
    release: np.ndarray
    item_domain: np.ndarray
    price: np.ndarray
    price_z: np.ndarray
    topic_mean: float = 0.0
    topic_sd: float = 1.0
    latent_mean: float = 0.0
    latent_sd: float = 1.0

    sampler = "genre"

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n_users: int,
        n_items: int,
        n_domains: int,
        n_genres: int,
        latent_dim: int,
        zipf_exponent: float,
        drift_fraction: float,
        new_item_fraction: float,
        new_user_fraction: float,
        start_time: float,
        duration: float,
        drift_at: float,
    ) -> _GenreWorld:
        appeal = (rng.permutation(n_genres) + 1.0) ** -GENRE_APPEAL_EXPONENT
        appeal /= appeal.sum()
        appeal_cum = np.cumsum(appeal)

        # Items: genres, then popularity rank inside the primary genre.
        primary = rng.integers(n_genres, size=n_items)
        secondary = (primary + rng.integers(1, max(n_genres, 2), size=n_items)) % n_genres
        has_secondary = (rng.random(n_items) < 0.4) & (n_genres > 1)
        secondary = np.where(has_secondary, secondary, primary)
        genre_items = np.lexsort((rng.random(n_items), primary))
        genre_start = np.searchsorted(primary[genre_items], np.arange(n_genres + 1))
        rank = np.empty(n_items)
        rank[genre_items] = np.arange(n_items) - genre_start[primary[genre_items]] + 1
        item_vec = rng.normal(size=(n_items, latent_dim)).astype(np.float32)
        release, item_domain, price, price_z = _draw_item_facts(
            rng, primary, n_domains, n_genres, new_item_fraction, start_time, duration
        )

        # Users: favourite genres by appeal, weights over them; drift redraws both.
        def favourites(count: int) -> tuple[np.ndarray, np.ndarray]:
            picks = np.searchsorted(appeal_cum, rng.random((count, FAVOURITE_GENRES)), "right")
            weights = rng.dirichlet(np.full(FAVOURITE_GENRES, 0.3), size=count)
            return np.minimum(picks, n_genres - 1).astype(np.int32), weights.astype(np.float32)

        fav, weights = favourites(n_users)
        fav_after, weights_after = fav.copy(), weights.copy()
        drifting = np.flatnonzero(rng.random(n_users) < drift_fraction)
        fav_after[drifting], weights_after[drifting] = favourites(len(drifting))
        user_vec, activity, signup, domain_pref = _draw_user_facts(
            rng, n_users, latent_dim, n_domains, new_user_fraction, start_time, duration
        )
        favourite = fav[np.arange(n_users), weights.argmax(axis=1)]
        age, female, occupation, price_sensitivity = _draw_profile_facts(rng, favourite, n_genres)
        world = cls(
            start_time=start_time,
            duration=duration,
            drift_time=start_time + drift_at * duration,
            appeal=appeal,
            favourites=fav,
            favourite_weights=weights,
            favourites_after=fav_after,
            favourite_weights_after=weights_after,
            user_vec=user_vec.astype(np.float32),
            activity_cum=np.cumsum(activity),
            signup=signup,
            domain_pref_cum=np.cumsum(domain_pref, axis=1),
            price_sensitivity=price_sensitivity,
            age=age,
            female=female,
            occupation=occupation,
            primary=primary.astype(np.int32),
            secondary=secondary.astype(np.int32),
            has_secondary=has_secondary,
            genre_items=genre_items.astype(np.int32),
            genre_start=genre_start,
            item_vec=item_vec,
            log_popularity=-zipf_exponent * np.log(rank),
            release=release,
            item_domain=item_domain,
            price=price,
            price_z=price_z,
        )
        world._standardise(rng)
        return world

    def _standardise(self, rng: np.random.Generator) -> None:
        """Set the affinities' scales from samples of pairs (see the module)."""
        n = _STANDARDISE_PAIRS
        users = rng.integers(self.n_users, size=n)
        items = rng.integers(self.n_items, size=n)
        latent = np.einsum("nd,nd->n", self.user_vec[users], self.item_vec[items])
        self.latent_mean, self.latent_sd = float(latent.mean()), float(latent.std()) or 1.0
        draw = rng.random(n) * self.activity_cum[-1]
        users = np.minimum(np.searchsorted(self.activity_cum, draw, "right"), self.n_users - 1)
        after = np.zeros(n, dtype=bool)
        genres = self._pick_genres(rng, users, after)
        size = np.diff(self.genre_start)[genres]
        keep = size > 0
        users, genres, after, size = users[keep], genres[keep], after[keep], size[keep]
        if not len(users):
            return
        position = self.genre_start[genres] + (rng.random(len(users)) * size).astype(np.int64)
        items = self.genre_items[position]
        topic = self._topic(users, genres[:, None], items[:, None], after)[:, 0]
        self.topic_mean, self.topic_sd = float(topic.mean()), float(topic.std()) or 1.0

    @property
    def n_users(self) -> int:
        return len(self.favourites)

    @property
    def n_items(self) -> int:
        return len(self.primary)

    @property
    def n_genres(self) -> int:
        return len(self.appeal)

    @property
    def genres(self) -> list[list[int]]:
        """Each item's genres, primary first (built on demand)."""
        return [
            [int(p), int(s)] if two else [int(p)]
            for p, s, two in zip(
                self.primary.tolist(), self.secondary.tolist(), self.has_secondary, strict=True
            )
        ]

    @property
    def width(self) -> int:
        """Candidates per session: the largest genre, at most the shortlist."""
        return int(min(max(np.diff(self.genre_start).max(), 1), SHORTLIST))

    def _taste(self, users: np.ndarray, genres: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The genre preference of each user (row) for each genre of its row of ``genres``."""
        fav = np.where(after[:, None], self.favourites_after[users], self.favourites[users])
        weights = np.where(
            after[:, None], self.favourite_weights_after[users], self.favourite_weights[users]
        )
        mine = (genres[:, :, None] == fav[:, None, :]) @ weights[:, :, None]
        return (1.0 - EXPLORE_SHARE) * mine[:, :, 0] + EXPLORE_SHARE * self.appeal[genres]

    def _topic(
        self, users: np.ndarray, genre: np.ndarray, items: np.ndarray, after: np.ndarray
    ) -> np.ndarray:
        """Raw topic affinity of each user with its row of ``items`` (all of primary ``genre``)."""
        second = self._taste(users, self.secondary[items], after)
        return self._taste(users, genre, after) + 0.5 * self.has_secondary[items] * second

    def _pick_genres(
        self, rng: np.random.Generator, users: np.ndarray, after: np.ndarray
    ) -> np.ndarray:
        n = len(users)
        explore = rng.random(n) < EXPLORE_SHARE
        appeal_pick = np.searchsorted(np.cumsum(self.appeal), rng.random(n), "right")
        appeal_pick = np.minimum(appeal_pick, self.n_genres - 1)
        fav = np.where(after[:, None], self.favourites_after[users], self.favourites[users])
        weights = np.where(
            after[:, None], self.favourite_weights_after[users], self.favourite_weights[users]
        )
        which = (rng.random(n)[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
        favourite_pick = fav[np.arange(n), np.minimum(which, FAVOURITE_GENRES - 1)]
        return np.where(explore, appeal_pick, favourite_pick).astype(np.int32)

    def pick_genres(self, rng: np.random.Generator, sessions: _Sessions) -> None:
        """Each session's genre, and the offset of its shortlist's window into the tail."""
        after = sessions.start >= self.drift_time
        sessions.genre = self._pick_genres(rng, sessions.user, after)
        size = np.diff(self.genre_start)[sessions.genre]
        tail = np.maximum(size - SHORTLIST // 2, 1)
        sessions.offset = (rng.random(len(size)) * tail).astype(np.int64)

    def scores(
        self, sessions: _Sessions, rows: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """Plackett-Luce log-weights of the sessions ``rows`` over their genre's shortlist.

        Returns ``(candidates, score, topic, latent)``, each ``(len(rows),
        width)``: ``candidates`` holds item ids; ``score`` is ``-inf`` past
        the genre's end, for an item not released yet and in another domain.
        """
        assert sessions.genre is not None and sessions.offset is not None
        users, start, genre = sessions.user[rows], sessions.start[rows], sessions.genre[rows]
        after = start >= self.drift_time
        size = np.diff(self.genre_start)[genre][:, None]
        column = np.arange(self.width)[None, :]
        head = SHORTLIST // 2
        tail = np.maximum(size - head, 1)
        in_tail = (size > SHORTLIST) & (column >= head)
        window = head + (sessions.offset[rows, None] + column - head) % tail
        index = np.where(in_tail, window, column)
        position = np.minimum(self.genre_start[genre][:, None] + index, self.n_items - 1)
        candidates = self.genre_items[position]
        raw = self._topic(users, genre[:, None], candidates, after)
        topic = _VIEW_TOPIC_MEAN + _VIEW_TOPIC_SD * (raw - self.topic_mean) / self.topic_sd
        latent = np.einsum("rd,rwd->rw", self.user_vec[users], self.item_vec[candidates])
        latent = (latent - self.latent_mean) / self.latent_sd
        score = self.log_popularity[candidates] + 1.0 * topic + 0.5 * latent
        available = (
            (column < np.minimum(size, SHORTLIST))
            & (self.release[candidates] <= start[:, None])
            & (self.item_domain[candidates] == sessions.domain[rows, None])
        )
        return candidates, np.where(available, score, -np.inf), topic, latent


# ----------------------------------------------------------------------------- simulation


@dataclass
class _Events:
    """Simulated events as parallel arrays (one entry per event)."""

    time: np.ndarray
    session: np.ndarray
    user: np.ndarray
    item: np.ndarray
    kind: np.ndarray  # index into _TYPES
    value: np.ndarray  # NaN where the event has no value
    domain: np.ndarray

    def take(self, index: np.ndarray) -> _Events:
        return _Events(*(getattr(self, name)[index] for name in self.__dataclass_fields__))


def _simulate_exactly(
    world: _World | _GenreWorld,
    n_events: int,
    stream_seed: int,
    mean_session_views: float,
    rating_probability: float,
    dislike_probability: float,
) -> tuple[_Events, _Sessions]:
    """Simulate sessions spread over the time span and keep exactly ``n_events`` events.

    The session count that yields ``n_events`` is not known in advance (the
    funnel is random), so a first run measures events per session and, unless
    it already landed within 5 % above the target, a second run uses that
    rate. Each run restarts the same generator, so the result depends only on
    the arguments. The cut keeps whole sessions in start order and a time
    prefix of the last one, which preserves the funnel order.
    """

    def run(n_sessions: int) -> tuple[_Events, _Sessions]:
        return _simulate(
            world,
            n_sessions,
            np.random.default_rng(stream_seed),
            mean_session_views,
            rating_probability,
            dislike_probability,
        )

    if n_events == 0:
        empty = np.zeros(0)
        return _Events(*(empty for _ in range(7))), _Sessions(empty, empty, empty)
    # About 1.8 events per view with the default funnel; a first guess only.
    n_sessions = max(1, math.ceil(n_events / (1.8 * mean_session_views)))
    events, sessions = run(n_sessions)
    if not n_events <= len(events.time) <= 1.05 * n_events:
        for _ in range(20):
            per_session = len(events.time) / n_sessions
            if per_session == 0:
                break
            n_sessions = math.ceil(n_events / per_session * 1.02) + 16
            events, sessions = run(n_sessions)
            if len(events.time) >= n_events:
                break
    if len(events.time) < n_events:
        raise DatasetError(
            f"generate_synthetic: could not produce {n_events} events "
            f"(got {len(events.time)}); is any item available at the start?"
        )
    in_session_order = np.lexsort((events.time, events.session))[:n_events]
    kept = events.take(in_session_order)
    # A stable sort: should two events share a timestamp, session order decides.
    return kept.take(np.argsort(kept.time, kind="stable")), sessions


def _simulate(
    world: _World | _GenreWorld,
    n_sessions: int,
    rng: np.random.Generator,
    mean_session_views: float,
    rating_probability: float,
    dislike_probability: float,
) -> tuple[_Events, _Sessions]:
    # Sessions: when, who (among users signed up by then), which domain, how long.
    starts = np.sort(rng.uniform(world.start_time, world.start_time + world.duration, n_sessions))
    n_signed_up = np.maximum(np.searchsorted(world.signup, starts, side="right"), 1)
    draw = rng.random(n_sessions) * world.activity_cum[n_signed_up - 1]
    users = np.minimum(np.searchsorted(world.activity_cum, draw, side="right"), n_signed_up - 1)
    n_domains = world.domain_pref_cum.shape[1]
    domains = (rng.random(n_sessions)[:, None] > world.domain_pref_cum[users]).sum(axis=1)
    domains = np.minimum(domains, n_domains - 1)
    lengths = 1 + rng.poisson(mean_session_views - 1.0, size=n_sessions)
    lengths = np.minimum(lengths, world.n_items)
    sessions = _Sessions(start=starts, user=users, domain=domains)
    world.pick_genres(rng, sessions)
    session, item, topic, latent = _draw_views(world, rng, sessions, lengths)
    views = (session, item, topic, latent)
    return _funnel(world, rng, sessions, views, rating_probability, dislike_probability), sessions


def _draw_views(
    world: _World | _GenreWorld,
    rng: np.random.Generator,
    sessions: _Sessions,
    lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each session's views: a Plackett-Luce draw without replacement (Gumbel top-k).

    Returns the views' sessions, items, and standardised topic and latent
    affinities, sessions in order and each session's views in draw order.
    """
    view_session, view_item, view_topic, view_latent = [], [], [], []
    n_sessions = len(lengths)
    chunk = max(1, _CHUNK_CELLS // world.width)
    for lo in range(0, n_sessions, chunk):
        rows = np.arange(lo, min(lo + chunk, n_sessions))
        candidates, score, topic, latent = world.scores(sessions, rows)
        score = score + rng.gumbel(size=score.shape)
        width = int(min(lengths[rows].max(), score.shape[1]))
        top = np.argpartition(-score, width - 1, axis=1)[:, :width]
        row_index = np.arange(top.shape[0])[:, None]
        top = np.take_along_axis(top, np.argsort(-score[row_index, top], axis=1), axis=1)
        keep = (np.arange(width)[None, :] < lengths[rows, None]) & np.isfinite(
            score[row_index, top]
        )
        row_of, col_of = np.nonzero(keep)
        columns = top[row_of, col_of]
        view_session.append(row_of + lo)
        view_item.append(columns if candidates is None else candidates[row_of, columns])
        view_topic.append(topic[row_of, columns])
        view_latent.append(latent[row_of, columns])
    return (
        np.concatenate(view_session),
        np.concatenate(view_item),
        np.concatenate(view_topic).astype(np.float64),
        np.concatenate(view_latent).astype(np.float64),
    )


def _funnel(
    world: _World | _GenreWorld,
    rng: np.random.Generator,
    sessions: _Sessions,
    views: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rating_probability: float,
    dislike_probability: float,
) -> _Events:
    """The events of ``views`` (as :func:`_draw_views` gives them): times, funnel, values."""
    session, item, topic, latent = views
    user = sessions.user[session]
    n_views = len(session)

    # View times: each view's dwell ends 2 s before the next view of its session;
    # the first view comes a few seconds after the session starts.
    dwell = 3.0 + rng.exponential(30.0, n_views) * np.exp(0.5 * np.clip(topic, -3, 3))
    first = np.ones(n_views, dtype=bool)
    first[1:] = session[1:] != session[:-1]
    step = np.where(first, 1.0 + rng.exponential(5.0, n_views), np.roll(dwell, 1) + 2.0)
    elapsed = np.cumsum(step)
    session_base = np.maximum.accumulate(np.where(first, elapsed - step, -np.inf))
    view_time = sessions.start[session] + elapsed - session_base

    # The funnel: each step needs the one before, and its own signal.
    click = rng.random(n_views) < _sigmoid(-2.8 + 1.5 * topic + 0.3 * latent)
    cart = click & (rng.random(n_views) < _sigmoid(-1.6 + 0.4 * topic + 1.2 * latent))
    buy_logit = 0.4 * latent - 1.5 * world.price_sensitivity[user] * world.price_z[item]
    purchase = cart & (rng.random(n_views) < _sigmoid(buy_logit))
    rated = click & (rng.random(n_views) < rating_probability)
    stars = np.clip(np.rint(2.0 + 0.7 * topic + 0.7 * latent + rng.normal(0, 0.8, n_views)), 1, 5)
    disliked = ~click & (rng.random(n_views) < 2.0 * dislike_probability * _sigmoid(-1.5 * topic))

    parts = [(np.ones(n_views, dtype=bool), "view", dwell)]
    parts += [(click, "click", None), (cart, "add_to_cart", None)]
    parts += [(purchase, "purchase", world.price[item]), (rated, "rating", stars)]
    parts += [(disliked, "dislike", None)]
    pieces = []
    for mask, kind, values in parts:
        at = 0.0 if kind == "view" else _STEP_AT[kind]
        chosen = np.flatnonzero(mask)
        pieces.append(
            _Events(
                time=view_time[chosen] + at * dwell[chosen],
                session=session[chosen],
                user=user[chosen],
                item=item[chosen],
                kind=np.full(len(chosen), _TYPES.index(kind)),
                value=np.full(len(chosen), np.nan) if values is None else values[chosen],
                domain=sessions.domain[session[chosen]],
            )
        )
    return _Events(
        *(
            np.concatenate([getattr(piece, name) for piece in pieces])
            for name in _Events.__dataclass_fields__
        )
    )


# ----------------------------------------------------------------------------- records


def _to_events(events: _Events, domains: list[str], prefix: str) -> list[Event]:
    """Contract events of the simulation arrays.

    A user's events share one ``user_id`` string, an item's one ``item_id``,
    and the events of a session one ``context`` dict (read-only, as every
    reader of events treats it): at 2,000,000 events that saves about a third
    of the list's memory.
    """
    kinds = [_TYPES[k] for k in events.kind.astype(int).tolist()]
    values = events.value.tolist()
    users: dict[int, str] = {}
    items: dict[int, str] = {}
    contexts: dict[int, dict[str, str | float]] = {}
    out = []
    for index, (time, user, item, kind, value, domain, session) in enumerate(
        zip(
            events.time.tolist(),
            events.user.astype(int).tolist(),
            events.item.astype(int).tolist(),
            kinds,
            values,
            events.domain.astype(int).tolist(),
            events.session.astype(int).tolist(),
            strict=True,
        )
    ):
        user_id = users.get(user)
        if user_id is None:
            user_id = users[user] = f"u{user}"
        item_id = items.get(item)
        if item_id is None:
            item_id = items[item] = f"i{item}"
        context = contexts.get(session)
        if context is None:
            context = contexts[session] = {"session_id": f"s{session}"}
        out.append(
            Event(
                user_id=user_id,
                item_id=item_id,
                event_type=kind,
                timestamp=time,
                value=None if math.isnan(value) else (round(value, 1) if kind == "view" else value),
                event_id=f"{prefix}-{index}",
                domain=domains[domain],
                context=context,
            )
        )
    return out


def _to_items(
    world: _World | _GenreWorld, rng: np.random.Generator, domains: list[str]
) -> list[Item]:
    names = _genre_names(world.n_genres)
    item_genres = world.genres
    start_year = datetime.fromtimestamp(world.start_time, tz=timezone.utc).year
    items = []
    for index in range(world.n_items):
        genres = item_genres[index]
        released = float(world.release[index])
        if released > world.start_time:
            year = datetime.fromtimestamp(released, tz=timezone.utc).year
        else:
            year = max(1950, start_year - int(rng.exponential(8.0)))
        features: dict[str, object] = {
            "title": _title(rng, [names[g] for g in genres]),
            "genres": [names[g] for g in genres],
            "year": year,
            "price": float(world.price[index]),
        }
        if len(domains) > 1:
            features["domain"] = domains[int(world.item_domain[index])]
        items.append(Item(item_id=f"i{index}", features=features, timestamp=released))
    return items


def _title(rng: np.random.Generator, genres: list[str]) -> str:
    words = []
    for _ in range(int(rng.integers(2, 4))):
        # Mostly the primary genre's words, so a title hints at its topic.
        genre = genres[0] if len(genres) == 1 or rng.random() < 0.7 else genres[1]
        vocabulary = _GENRE_WORDS.get(genre) or tuple(f"{genre.title()}{k}" for k in range(8))
        words.append(vocabulary[int(rng.integers(len(vocabulary)))])
    return " ".join(["The", *words]) if rng.random() < 0.3 else " ".join(words)


def _to_profiles(world: _World | _GenreWorld) -> list[UserProfile]:
    return [
        UserProfile(
            user_id=f"u{index}",
            features={
                "age": int(world.age[index]),
                "gender": "F" if world.female[index] else "M",
                "occupation": _OCCUPATIONS[int(world.occupation[index])],
            },
            timestamp=float(world.signup[index]),
        )
        for index in range(world.n_users)
    ]


# ----------------------------------------------------------------------------- the truth


class SyntheticTruth:
    """What the generator knows about its stream: the world, each session, each event's session.

    Held on ``Dataset.truth`` of a generated stream. The world is every
    hidden quantity of the module docstring (tastes before and after the
    drift, latent vectors, popularity, releases, domains); a session is its
    user, start time, domain and, with the genre sampler, its genre and
    shortlist offset. From these :meth:`ranking` recomputes the exact
    Plackett-Luce weights the session's views were drawn with.

    Parameters
    ----------
    world, sessions
        The generator's world and the sessions of the run that made the stream.
    event_session
        Session of each event, in stream order.
    """

    def __init__(
        self, world: _World | _GenreWorld, sessions: _Sessions, event_session: np.ndarray
    ) -> None:
        self.world = world
        self.sessions = sessions
        self.event_session = event_session

    def __repr__(self) -> str:
        return (
            f"SyntheticTruth({self.world.sampler} sampler, {self.n_events} events, "
            f"{len(self.sessions.start)} sessions)"
        )

    @property
    def n_events(self) -> int:
        return len(self.event_session)

    def session_of(self, position: int) -> int:
        """The session of the event at 0-based ``position`` in the stream."""
        return int(self.event_session[position])

    def session_user(self, session: int) -> str:
        return f"u{int(self.sessions.user[session])}"

    def ranking(self, session: int) -> tuple[list[str], np.ndarray]:
        """The items a session's views were drawn from, by true weight, best first.

        Returns item ids and their Plackett-Luce log-weights (``log
        popularity + 1.0 topic + 0.5 latent``); items not yet released or in
        another domain, which the session could not draw, are left out. Equal
        weights go to the lower item id.
        """
        candidates, score, _, _ = self.world.scores(self.sessions, np.array([session]))
        row = score[0]
        items = np.arange(len(row)) if candidates is None else candidates[0]
        finite = np.isfinite(row)
        items, row = items[finite], row[finite]
        order = np.lexsort((items, -row))
        return [f"i{item}" for item in items[order].tolist()], row[order]


class SyntheticOracle(Recommender):
    """The generator's own answer: before each event, the top of the distribution it was drawn from.

    What it knows, exactly: the whole :class:`SyntheticTruth`, and which
    session the *next* event of the stream belongs to (it counts the events
    it has learned, so it must be fed the stream of its truth from the start,
    as ``prequential`` does; a prefix is fine). Before an event of session
    ``s`` its list is the items of ``s``'s Plackett-Luce draw (the genre's
    shortlist, or the whole catalog with the dense sampler) by their true
    weight, less the items the user has already interacted with: the
    evaluator ranks only first interactions, so this is the best list any
    model could give without reading the random draws themselves. It knows
    the session's genre before the session's first event, which no model
    can. It does not know the Gumbel noise, the funnel's coin flips or which
    view comes next; a rank among equal weights is by item id.

    A user asked about who is not the next event's user gets the list of
    their latest session (none: an empty list). Not in the registry: it
    cannot be built without a stream's truth.

    Parameters
    ----------
    truth
        The stream's :class:`SyntheticTruth` (``Dataset.truth``).
    """

    name = "oracle"

    def __init__(self, truth: SyntheticTruth) -> None:
        self.truth = truth
        self._learned = 0
        self._seen: dict[str, set[str]] = {}
        self._latest: dict[str, int] = {}
        self._withdrawn: set[str] = set()
        self._rankings: dict[int, tuple[list[str], np.ndarray]] = {}

    def learn_one(self, event: Event) -> None:
        position = self._learned
        self._learned += 1
        if event.event_type == "forget_user":
            self.forget_user(event.user_id)
            return
        if event.item_id is not None:
            self._seen.setdefault(event.user_id, set()).add(event.item_id)
        if position < self.truth.n_events:
            self._latest[event.user_id] = self.truth.session_of(position)

    def add_item(self, item: Item) -> None:
        self._withdrawn.discard(item.item_id)

    def withdraw_item(self, item_id: str) -> None:
        self._withdrawn.add(item_id)

    def forget_user(self, user_id: str) -> bool:
        known = self._seen.pop(user_id, None) is not None
        return self._latest.pop(user_id, None) is not None or known

    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        truth = self.truth
        upcoming = truth.session_of(self._learned) if self._learned < truth.n_events else None
        reason = "the generator's own draw" if with_reasons else ""
        lists = []
        for user_id in user_ids:
            session = upcoming
            if session is None or truth.session_user(session) != user_id:
                session = self._latest.get(user_id)
            if session is None or k <= 0:
                lists.append([])
                continue
            items, weights = self._ranking(session)
            seen = self._seen.get(user_id, set())
            entries: list[RecommendedItem] = []
            for item_id, weight in zip(items, weights.tolist(), strict=True):
                if item_id in seen or item_id in self._withdrawn:
                    continue
                entries.append(RecommendedItem(item_id, weight, {}, reason))
                if len(entries) == k:
                    break
            lists.append(entries)
        return lists

    def _ranking(self, session: int) -> tuple[list[str], np.ndarray]:
        ranking = self._rankings.get(session)
        if ranking is None:
            if len(self._rankings) >= 4096:  # sessions are short: drop the old ones
                self._rankings.clear()
            ranking = self._rankings[session] = self.truth.ranking(session)
        return ranking

    @property
    def n_users(self) -> int:
        return len(self._seen)

    @property
    def n_items(self) -> int:
        return 0
