"""A seeded synthetic multi-behaviour stream with known, planted structure.

Real logs rarely say why a user did something; this generator does, so a test
or a benchmark can ask whether a model found what was planted. What is planted
(all of it driven by one ``np.random.default_rng`` and deterministic per seed):

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

>>> data = generate_synthetic(n_users=50, n_items=40, n_events=300, seed=3)
>>> len(data.events), len(data.items), len(data.profiles)
(300, 40, 50)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from stream.datasets import Dataset
from stream.errors import DatasetError
from stream.events import DEFAULT_DOMAIN, Event, Item, UserProfile

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


def generate_synthetic(
    n_users: int = 2000,
    n_items: int = 500,
    n_events: int = 50_000,
    seed: int = 0,
    n_domains: int = 1,
    *,
    n_genres: int = 8,
    latent_dim: int = 8,
    zipf_exponent: float = 1.0,
    mean_session_views: float = 5.0,
    drift_at: float = 0.5,
    drift_fraction: float = 0.3,
    new_item_fraction: float = 0.2,
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
        Number of genres (item topics). The first 8 have names and title words.
    latent_dim
        Size of the personal latent vectors of users and items.
    zipf_exponent
        Item popularity weight is ``rank ** -zipf_exponent``.
    mean_session_views
        Mean number of distinct items viewed in a session (at least 1).
    drift_at, drift_fraction
        When (fraction of the time span) tastes shift, and for what share of users.
    new_item_fraction, new_user_fraction
        Share of items released, and of users signing up, during the stream.
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
        (numbered in sign-up order), items ``i<n>``.

    Raises
    ------
    DatasetError
        If an argument is out of range.
    """
    for name, count in (
        ("n_users", n_users),
        ("n_items", n_items),
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
    world = _World.draw(
        rng, n_users, n_items, n_domains, n_genres, latent_dim, zipf_exponent,
        drift_fraction, new_item_fraction, new_user_fraction,
        start_time, duration_days * _DAY, drift_at,
    )  # fmt: skip
    stream_seed = int(rng.integers(2**63))
    events = _simulate_exactly(
        world, n_events, stream_seed, mean_session_views, rating_probability, dislike_probability
    )
    domain_names = _domain_names(n_domains)
    return Dataset(
        name="synthetic",
        events=_to_events(events, domain_names, f"syn{seed}"),
        items=_to_items(world, rng, domain_names),
        profiles=_to_profiles(world),
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


# ----------------------------------------------------------------------------- the world


@dataclass
class _World:
    """The hidden truth: who likes what, and when things exist."""

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

        # Users
        taste = rng.dirichlet(np.full(n_genres, 0.3), size=n_users)
        taste_after = taste.copy()
        drifting = rng.random(n_users) < drift_fraction
        taste_after[drifting] = rng.dirichlet(np.full(n_genres, 0.3), size=int(drifting.sum()))
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
        # Profiles follow the favourite genre (before drift), so they place a
        # new user; price sensitivity falls with age, so age also predicts purchases.
        favourite = taste.argmax(axis=1)
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
    world: _World,
    n_events: int,
    stream_seed: int,
    mean_session_views: float,
    rating_probability: float,
    dislike_probability: float,
) -> _Events:
    """Simulate sessions spread over the time span and keep exactly ``n_events`` events.

    The session count that yields ``n_events`` is not known in advance (the
    funnel is random), so a first run measures events per session and, unless
    it already landed within 5 % above the target, a second run uses that
    rate. Each run restarts the same generator, so the result depends only on
    the arguments. The cut keeps whole sessions in start order and a time
    prefix of the last one, which preserves the funnel order.
    """

    def run(n_sessions: int) -> _Events:
        return _simulate(
            world,
            n_sessions,
            np.random.default_rng(stream_seed),
            mean_session_views,
            rating_probability,
            dislike_probability,
        )

    empty = _Events(*(np.zeros(0) for _ in range(7)))
    if n_events == 0:
        return empty
    # About 1.8 events per view with the default funnel; a first guess only.
    n_sessions = max(1, math.ceil(n_events / (1.8 * mean_session_views)))
    events = run(n_sessions)
    if not n_events <= len(events.time) <= 1.05 * n_events:
        for _ in range(20):
            per_session = len(events.time) / n_sessions
            if per_session == 0:
                break
            n_sessions = math.ceil(n_events / per_session * 1.02) + 16
            events = run(n_sessions)
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
    return kept.take(np.argsort(kept.time, kind="stable"))


def _simulate(
    world: _World,
    n_sessions: int,
    rng: np.random.Generator,
    mean_session_views: float,
    rating_probability: float,
    dislike_probability: float,
) -> _Events:
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

    # Views: a Plackett-Luce draw without replacement per session (Gumbel top-k).
    view_session, view_item, view_topic, view_latent = [], [], [], []
    chunk = max(1, 2_000_000 // world.n_items)
    for lo in range(0, n_sessions, chunk):
        rows = slice(lo, min(lo + chunk, n_sessions))
        s_users = users[rows]
        after = (starts[rows] >= world.drift_time)[:, None]
        taste = np.where(after, world.taste_after[s_users], world.taste[s_users])
        topic = (taste @ world.item_topic.T - world.topic_mean) / world.topic_sd
        latent = (world.user_vec[s_users] @ world.item_vec.T - world.latent_mean) / world.latent_sd
        score = world.log_popularity + 1.0 * topic + 0.5 * latent
        available = (world.release[None, :] <= starts[rows, None]) & (
            world.item_domain[None, :] == domains[rows, None]
        )
        score = np.where(available, score + rng.gumbel(size=score.shape), -np.inf)
        width = int(lengths[rows].max())
        top = np.argpartition(-score, width - 1, axis=1)[:, :width]
        row_index = np.arange(top.shape[0])[:, None]
        top = np.take_along_axis(top, np.argsort(-score[row_index, top], axis=1), axis=1)
        keep = (np.arange(width)[None, :] < lengths[rows, None]) & np.isfinite(
            score[row_index, top]
        )
        row_of, col_of = np.nonzero(keep)
        items = top[row_of, col_of]
        view_session.append(row_of + lo)
        view_item.append(items)
        view_topic.append(topic[row_of, items])
        view_latent.append(latent[row_of, items])
    session = np.concatenate(view_session)
    item = np.concatenate(view_item)
    topic = np.concatenate(view_topic)
    latent = np.concatenate(view_latent)
    user = users[session]
    n_views = len(session)

    # View times: each view's dwell ends 2 s before the next view of its session;
    # the first view comes a few seconds after the session starts.
    dwell = 3.0 + rng.exponential(30.0, n_views) * np.exp(0.5 * np.clip(topic, -3, 3))
    first = np.ones(n_views, dtype=bool)
    first[1:] = session[1:] != session[:-1]
    step = np.where(first, 1.0 + rng.exponential(5.0, n_views), np.roll(dwell, 1) + 2.0)
    elapsed = np.cumsum(step)
    session_base = np.maximum.accumulate(np.where(first, elapsed - step, -np.inf))
    view_time = starts[session] + elapsed - session_base

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
                domain=domains[session[chosen]],
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
    kinds = [_TYPES[k] for k in events.kind.astype(int).tolist()]
    values = events.value.tolist()
    return [
        Event(
            user_id=f"u{user}",
            item_id=f"i{item}",
            event_type=kind,
            timestamp=time,
            value=None if math.isnan(value) else (round(value, 1) if kind == "view" else value),
            event_id=f"{prefix}-{index}",
            domain=domains[domain],
            context={"session_id": f"s{session}"},
        )
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
        )
    ]


def _to_items(world: _World, rng: np.random.Generator, domains: list[str]) -> list[Item]:
    names = _genre_names(world.item_topic.shape[1])
    start_year = datetime.fromtimestamp(world.start_time, tz=timezone.utc).year
    items = []
    for index in range(world.n_items):
        genres = world.genres[index]
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


def _to_profiles(world: _World) -> list[UserProfile]:
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
