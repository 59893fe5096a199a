"""Properties of the event decoder and validator under hostile input (hypothesis).

The decoder is the service's only door: whatever bytes and key arrive, it
must return a valid :class:`~stream.events.Event` or raise
:class:`~stream.errors.InvalidRecord` with a reason of ``REASONS``, never
anything else (an escaping exception would stop the partition), and never
slowly. Each kind of bad record gets the one reason a producer can act on.

Examples are not stored (``database=None``); the deadline is generous
because the machine is shared, and a hang would exceed it by far. For a
longer hunt: ``STREAMREC_FUZZ_EXAMPLES=5000 pytest tests/test_events_properties.py``.
"""

from __future__ import annotations

import math
import os
import struct
import time
from datetime import timedelta

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stream.errors import InvalidRecord
from stream.events import (
    DEFAULT_DOMAIN,
    EVENT_TYPES,
    MAX_ABS_VALUE,
    MAX_CONTAINER_LEN,
    MAX_ID_BYTES,
    MAX_RECORD_BYTES,
    MAX_TEXT_BYTES,
    MAX_TIMESTAMP,
    Event,
    decode_event,
    decode_item,
    decode_profile,
    encode_event,
)
from tests.integration.poison import FUZZ_KINDS, edge_valid_records, fuzz_records

CHECKS = settings(
    max_examples=int(os.environ.get("STREAMREC_FUZZ_EXAMPLES", "150")),
    deadline=timedelta(seconds=1),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REQUIRED = ("user_id", "item_id", "event_type", "timestamp")
# msgpack's C decoder holds at most 1,024 nested containers. Its pure-Python
# fallback (MSGPACK_PUREPYTHON, PyPy) stops at Python's recursion limit
# instead, which moves with the caller's stack: no fixed depth to test there.
FIXED_DEPTH_LIMIT = msgpack.Unpacker.__module__ == "msgpack._cmsgpack"
needs_fixed_depth_limit = pytest.mark.skipif(
    not FIXED_DEPTH_LIMIT, reason="pure-Python msgpack: nesting limit is the recursion limit"
)
NAN_AND_INFINITIES = (math.nan, math.inf, -math.inf)


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def outcome(value: bytes | None, key: bytes | None) -> Event | str:
    """The decoded event, or the reason it was rejected; any other exception propagates."""
    try:
        return decode_event(value, key)
    except InvalidRecord as exc:
        assert exc.reason in InvalidRecord.REASONS
        assert exc.message and str(exc) == exc.message
        # Messages name the field, never echo a long hostile payload.
        assert len(exc.message.encode()) <= 1024, exc.message[:200]
        return exc.reason


def reason_of(value: bytes | None, key: bytes | None = None) -> str:
    result = outcome(value, key)
    assert not isinstance(result, Event), f"accepted: {result}"
    return result


def assert_valid(event: Event, key: bytes | None) -> None:
    """Everything the contract promises about a decoded event."""
    assert type(event.user_id) is str and 1 <= len(event.user_id.encode()) <= MAX_ID_BYTES
    assert event.event_type in EVENT_TYPES
    if event.event_type == "forget_user":
        assert event.item_id is None
    else:
        assert type(event.item_id) is str and 1 <= len(event.item_id.encode()) <= MAX_ID_BYTES
    assert type(event.timestamp) is float and math.isfinite(event.timestamp)
    assert event.timestamp >= 0
    assert event.value is None or (type(event.value) is float and math.isfinite(event.value))
    assert event.event_id is None or len(event.event_id.encode()) <= MAX_ID_BYTES
    assert type(event.domain) is str and 1 <= len(event.domain.encode()) <= MAX_ID_BYTES
    assert len(event.context) <= MAX_CONTAINER_LEN
    for name, item in event.context.items():
        assert type(name) is str and len(name.encode()) <= MAX_ID_BYTES
        if type(item) is str:
            assert len(item.encode()) <= MAX_TEXT_BYTES
        else:
            assert type(item) is float and math.isfinite(item)
    assert key is None or key == event.user_id.encode()


# ----------------------------------------------------------------------------- strategies

# Any Unicode scalar (no surrogates: they cannot be UTF-8); at most 4 bytes each.
chars = st.characters(codec="utf-8")
ids = st.text(chars, min_size=1, max_size=MAX_ID_BYTES // 4) | st.sampled_from(
    ["x" * MAX_ID_BYTES, "\u00e9" * (MAX_ID_BYTES // 2), "\U0001f642" * (MAX_ID_BYTES // 4)]
)
timestamps = st.floats(min_value=0.0, max_value=MAX_TIMESTAMP, exclude_max=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE)
contexts = st.dictionaries(
    st.text(chars, max_size=MAX_ID_BYTES // 4),
    st.text(chars, max_size=MAX_TEXT_BYTES // 4) | finite,
    max_size=8,
)
keys = st.none() | st.binary(max_size=300)
# msgpack values the decoder can meet: every type, containers and nesting small.
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.floats(width=32)
    | st.text(chars, max_size=40)
    | st.binary(max_size=40)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.just(b"")),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(chars, max_size=10) | st.binary(max_size=4), children, max_size=5)
    ),
    max_leaves=25,
)
wrong_for_str = msgpack_values.filter(lambda v: type(v) is not str)
wrong_for_number = msgpack_values.filter(
    lambda v: isinstance(v, bool) or not isinstance(v, (int, float))
)


@st.composite
def events(draw: st.DrawFn, event_types: st.SearchStrategy[str] | None = None) -> Event:
    """Valid events of the contract, every optional field sometimes set."""
    if event_types is None:
        event_types = st.sampled_from(sorted(EVENT_TYPES))
    event_type = draw(event_types)
    return Event(
        user_id=draw(ids),
        item_id=None if event_type == "forget_user" else draw(ids),
        event_type=event_type,
        timestamp=draw(timestamps),
        value=draw(st.none() | values),
        event_id=draw(st.none() | st.just("") | ids),
        domain=draw(st.just(DEFAULT_DOMAIN) | ids),
        context=draw(contexts),
    )


checked_events = events(st.sampled_from(sorted(EVENT_TYPES - {"forget_user"})))


def fields_of(event: Event) -> dict:
    return event.to_dict()


def own_key(event: Event, with_key: bool) -> bytes | None:
    return event.user_id.encode() if with_key else None


# ----------------------------------------------------------------------------- never crash


@CHECKS
@given(st.binary(max_size=4096), keys)
def test_arbitrary_bytes_give_an_event_or_a_reason(value, key):
    result = outcome(value, key)
    if isinstance(result, Event):
        assert_valid(result, key)


@CHECKS
@given(msgpack_values, keys)
def test_arbitrary_msgpack_gives_an_event_or_a_reason(obj, key):
    result = outcome(pack(obj), key)
    if isinstance(result, Event):
        assert_valid(result, key)


@CHECKS
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: msgpack_values | st.sampled_from(sorted(EVENT_TYPES))
            for name in (*REQUIRED, "value", "event_id", "domain", "context")
        },
    ),
    keys,
)
def test_arbitrary_values_in_contract_fields_give_an_event_or_a_reason(fields, key):
    result = outcome(pack(fields), key)
    if isinstance(result, Event):
        assert_valid(result, key)


@CHECKS
@given(events(), st.booleans(), st.data())
def test_mutated_bytes_of_a_valid_event_give_an_event_or_a_reason(event, with_key, data):
    raw = bytearray(encode_event(event))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "insert" or where == len(raw):
            raw[where:where] = data.draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del raw[where]
        else:
            raw[where] ^= data.draw(st.integers(1, 255))
    key = own_key(event, with_key)
    result = outcome(bytes(raw), key)
    if isinstance(result, Event):
        assert_valid(result, key)


@CHECKS
@given(st.binary(max_size=2048) | msgpack_values.map(pack), keys)
def test_catalog_and_profile_decoders_never_raise_anything_else(value, key):
    for decode in (decode_item, decode_profile):
        try:
            decode(value, key)
        except InvalidRecord as exc:
            assert exc.reason in InvalidRecord.REASONS


# ----------------------------------------------------------------------------- good stays good


@CHECKS
@given(events(), st.booleans())
def test_valid_events_round_trip(event, with_key):
    key = own_key(event, with_key)
    decoded = decode_event(encode_event(event), key)
    assert decoded == event
    assert_valid(decoded, key)
    assert encode_event(decoded) == encode_event(event)


@CHECKS
@given(
    events(),
    st.dictionaries(
        st.text(chars, max_size=20).filter(
            lambda k: k not in {*REQUIRED, "value", "event_id", "domain", "context"}
        ),
        msgpack_values,
        max_size=6,
    ),
)
def test_unknown_extra_fields_of_any_type_are_ignored(event, extra):
    assert decode_event(pack({**extra, **event.to_dict()}), None) == event


@CHECKS
@given(events(), st.integers(0, int(MAX_TIMESTAMP) - 1), st.booleans())
def test_integer_and_float32_numbers_are_accepted(event, timestamp, single):
    # (Other floats are dropped: a large double is infinite as a float32.)
    fields = {**event.to_dict(), "timestamp": timestamp, "value": 2.5, "context": {"n": 7}}
    raw = msgpack.packb(fields, use_bin_type=True, use_single_float=single)
    decoded = decode_event(raw, None)
    assert decoded.timestamp == float(timestamp) and type(decoded.timestamp) is float
    assert decoded.value == 2.5 and decoded.context == {"n": 7.0}


@settings(CHECKS, max_examples=max(40, CHECKS.max_examples // 4))
@given(st.integers(0, 2**32 - 1))
def test_every_edge_valid_fuzz_record_decodes_to_its_event(seed):
    for record in edge_valid_records(8, seed):
        assert decode_event(record.value, record.key) == record.event, record.kind


# ----------------------------------------------------------------------- each kind, its reason


@CHECKS
@given(st.binary(max_size=2048))
def test_bytes_starting_with_the_unused_msgpack_byte_are_not_msgpack(tail):
    assert reason_of(b"\xc1" + tail) == "not_msgpack"


@CHECKS
@given(events(), st.data())
def test_truncated_or_trailing_bytes_are_not_msgpack(event, data):
    raw = encode_event(event)
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert reason_of(raw[:cut]) == "not_msgpack"
    assert reason_of(raw + data.draw(st.binary(min_size=1, max_size=32))) == "not_msgpack"


@CHECKS
@given(
    checked_events,
    st.sampled_from(["user_id", "item_id", "event_type", "extra", "key"]),
    st.sampled_from([b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]),
)
def test_invalid_utf8_in_any_string_is_not_msgpack(event, where, bad):
    fields = event.to_dict()
    raw_str = msgpack.packb(b"ok" + bad, use_bin_type=False)  # bytes with the str type
    entries = [(pack(k), raw_str if k == where else pack(v)) for k, v in fields.items()]
    if where in ("extra", "key"):
        entries.append((raw_str, pack(1)) if where == "key" else (pack("note"), raw_str))
    assert reason_of(raw_map(entries)) == "not_msgpack"


def raw_map(entries: list[tuple[bytes, bytes]]) -> bytes:
    n = len(entries)
    header = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return header + b"".join(k + v for k, v in entries)


@CHECKS
@given(
    checked_events,
    st.sampled_from([b"\xc0", b"\xc2", b"\xc3", b"\x01", b"\xff", b"\xcb" + b"\0" * 8, b"\x90"]),
)
def test_a_map_key_that_is_not_a_string_is_not_msgpack(event, bad_key):
    entries = [(pack(k), pack(v)) for k, v in event.to_dict().items()]
    assert reason_of(raw_map([*entries, (bad_key, pack(1))])) == "not_msgpack"


@needs_fixed_depth_limit
@CHECKS
@given(
    st.integers(1025, 20_000),
    st.sampled_from(["top", "field", "context"]),
    st.lists(st.sampled_from([b"\x91", b"\x81\xa1k"]), min_size=1, max_size=8),
)
def test_nesting_deeper_than_the_decoder_stack_is_not_msgpack(depth, where, pattern):
    # One-element arrays and one-entry maps, in a repeating pattern.
    nested = b"".join(pattern[i % len(pattern)] for i in range(depth)) + b"\x01"
    if where == "top":
        value = nested
    else:
        fields = {"user_id": "u", "item_id": "i", "event_type": "view", "timestamp": 1.0}
        entries = [(pack(k), pack(v)) for k, v in fields.items()]
        value = raw_map([*entries, (pack("tree" if where == "field" else "context"), nested)])
    assert reason_of(value) == "not_msgpack"


@CHECKS
@given(msgpack_values.filter(lambda v: not isinstance(v, dict)))
def test_anything_but_a_map_is_not_a_map(obj):
    assert reason_of(pack(obj)) == "not_a_map"
    assert reason_of(None) == "not_a_map"


@CHECKS
@given(checked_events, st.sets(st.sampled_from(REQUIRED), min_size=1), st.booleans())
def test_a_missing_required_field_is_missing_field(event, dropped, with_key):
    fields = {k: v for k, v in event.to_dict().items() if k not in dropped}
    key = own_key(event, with_key and "user_id" not in dropped)
    assert reason_of(pack(fields), key) == "missing_field"


@CHECKS
@given(
    checked_events,
    st.sampled_from(
        [
            ("user_id", wrong_for_str),
            ("item_id", wrong_for_str),
            ("event_type", wrong_for_str),
            ("timestamp", wrong_for_number),
            ("value", wrong_for_number.filter(lambda v: v is not None)),
            ("event_id", wrong_for_str.filter(lambda v: v is not None)),
            ("domain", wrong_for_str.filter(lambda v: v is not None)),
            ("context", msgpack_values.filter(lambda v: v is not None and type(v) is not dict)),
            ("context value", msgpack_values.filter(lambda v: type(v) not in (str, int, float))),
            ("context key", st.binary(max_size=8)),
        ]
    ),
    st.data(),
)
def test_a_field_of_the_wrong_type_is_wrong_type(event, field_and_wrong, data):
    name, wrong = field_and_wrong
    fields = event.to_dict()
    bad = data.draw(wrong)
    if name == "context value":
        fields["context"] = {"page": bad}
    elif name == "context key":
        fields["context"] = {bad: "x"}
    else:
        fields[name] = bad
    assert reason_of(pack(fields), own_key(event, True)) == "wrong_type"


@CHECKS
@given(checked_events, st.text(chars, max_size=60), st.booleans())
def test_an_unknown_event_type_is_unknown_event_type(event, event_type, with_key):
    assume(event_type not in EVENT_TYPES)
    fields = {**event.to_dict(), "event_type": event_type}
    assert reason_of(pack(fields), own_key(event, with_key)) == "unknown_event_type"


@CHECKS
@given(
    checked_events,
    st.sampled_from(["timestamp", "value", "context value"]),
    st.sampled_from(NAN_AND_INFINITIES),
    st.booleans(),
)
def test_nan_and_infinities_in_any_number_are_non_finite(event, where, number, single):
    # The other numbers small: a large double does not fit in a float32.
    fields = {k: v for k, v in event.to_dict().items() if k not in ("context", "value")}
    fields["timestamp"] = 1_700_000_000.0
    if where == "context value":
        fields["context"] = {"score": number}
    else:
        fields[where] = number
    raw = msgpack.packb(fields, use_bin_type=True, use_single_float=single)
    assert reason_of(raw, own_key(event, True)) == "non_finite"


@CHECKS
@given(
    checked_events,
    st.sampled_from(["user_id", "item_id", "event_type", "event_id", "domain", "context key"]),
    st.integers(MAX_ID_BYTES + 1, MAX_TEXT_BYTES),
    st.sampled_from(["x", "\u00e9", "\u4e2d", "\U0001f642"]),
)
def test_an_id_over_256_bytes_is_string_too_long(event, where, n_bytes, char):
    width = len(char.encode())
    text = char * (n_bytes // width) + "x" * (n_bytes % width)
    assert len(text.encode()) == n_bytes
    fields = event.to_dict()
    if where == "context key":
        fields["context"] = {text: 1.0}
    else:
        fields[where] = text
    key = text.encode() if where == "user_id" else own_key(event, True)
    assert reason_of(pack(fields), key) == "string_too_long"


#: Where a string over the decoder's cap can sit: the record with one of ``n`` bytes there.
LONG_STRING_AT = {
    "user_id": lambda fields, n: {**fields, "user_id": "s" * n},
    "item_id": lambda fields, n: {**fields, "item_id": "s" * n},
    "context value": lambda fields, n: {**fields, "context": {"page": "s" * n}},
    "extra str": lambda fields, n: {**fields, "note": "s" * n},
    "extra bin": lambda fields, n: {**fields, "note": b"s" * n},
}
#: Where a map or array over 256 entries can sit: the record with one of ``n`` entries there.
BIG_CONTAINER_AT = {
    "context": lambda fields, n: {**fields, "context": {f"k{i}": float(i) for i in range(n)}},
    "extra map": lambda fields, n: {**fields, "attributes": {f"k{i}": i for i in range(n)}},
    "extra array": lambda fields, n: {**fields, "items": list(range(n))},
    "event map": lambda fields, n: {**fields, **{f"k{i}": i for i in range(n)}},
    "top array": lambda fields, n: [0] * n,
}


@pytest.mark.parametrize(
    ("places", "sizes"),
    [
        (LONG_STRING_AT, (MAX_TEXT_BYTES + 1, 60_000)),
        (BIG_CONTAINER_AT, (MAX_CONTAINER_LEN + 1, 3000)),
    ],
    ids=["string_over_the_decoder_cap", "map_or_array_over_256_entries"],
)
@CHECKS
@given(checked_events, st.data())
def test_a_string_map_or_array_over_its_cap_is_too_large(places, sizes, event, data):
    where = data.draw(st.sampled_from(list(places)), label="where")
    n = data.draw(st.integers(*sizes), label="size")
    assert reason_of(pack(places[where](event.to_dict(), n))) == "too_large", where


@CHECKS
@given(
    st.sampled_from([(b"\xdc", ">H"), (b"\xde", ">H"), (b"\xdd", ">I"), (b"\xdf", ">I")]),
    st.data(),
)
def test_a_container_header_claiming_too_many_entries_is_too_large(marker_and_format, data):
    marker, fmt = marker_and_format  # array16, map16, array32, map32
    count = data.draw(st.integers(MAX_CONTAINER_LEN + 1, 2 ** (8 * struct.calcsize(fmt)) - 1))
    header = marker + struct.pack(fmt, count)
    assert reason_of(header + b"\x01\x02") == "too_large"
    assert reason_of(raw_map([(pack("user_id"), pack("u")), (pack("x"), header)])) == "too_large"


@CHECKS
@given(st.integers(MAX_RECORD_BYTES + 1, 2 * MAX_RECORD_BYTES), st.binary(max_size=16))
def test_a_record_over_64_KiB_is_too_large_whatever_it_holds(size, start):
    assert reason_of((start + b"\x00" * size)[:size]) == "too_large"
    fields = {"user_id": "u", "item_id": "i", "event_type": "view", "timestamp": 1.0}
    fields["padding"] = ["p" * 4000] * (size // 4000 + 1)  # each piece within the caps
    assert reason_of(pack(fields)) == "too_large"


@CHECKS
@given(
    checked_events,
    st.sampled_from(["user_id", "item_id", "timestamp"]),
    st.floats(max_value=-5e-324, allow_infinity=False) | st.integers(-(2**63), -1),
)
def test_an_empty_id_or_a_negative_timestamp_is_out_of_range(event, where, negative):
    fields = event.to_dict()
    fields[where] = negative if where == "timestamp" else ""
    key = own_key(event, where != "user_id")
    assert reason_of(pack(fields), key) == "out_of_range"


@CHECKS
@given(
    checked_events,
    st.sampled_from(["timestamp", "value"]),
    st.floats(min_value=MAX_TIMESTAMP, allow_infinity=False) | st.integers(2**40, 2**64 - 1),
    st.booleans(),
)
def test_a_far_future_timestamp_or_a_huge_value_is_out_of_range(event, where, big, negate):
    fields = event.to_dict()
    if where == "value" and float(big) <= MAX_ABS_VALUE:
        big = MAX_ABS_VALUE * 2
    if negate and where == "value":
        # msgpack's smallest integer is -2**63; a float goes below it fine.
        big = -min(big, 2**63) if isinstance(big, int) else -big
    fields[where] = big
    assert reason_of(pack(fields), own_key(event, True)) == "out_of_range"


@CHECKS
@given(events(), keys)
def test_a_key_other_than_the_user_id_is_key_mismatch(event, key):
    assume(key is not None and key != event.user_id.encode())
    assert reason_of(encode_event(event), key) == "key_mismatch"


@CHECKS
@given(events())
def test_the_same_user_in_another_encoding_or_normal_form_is_key_mismatch(event):
    user = event.user_id
    for key in (user.encode("utf-16"), user.encode() + b"\0", "e\u0301".encode()):
        fields = {**event.to_dict(), "user_id": "\u00e9" if key == "e\u0301".encode() else user}
        assert reason_of(pack(fields), key) == "key_mismatch"


@settings(CHECKS, max_examples=max(40, CHECKS.max_examples // 4))
@given(st.integers(0, 2**32 - 1))
def test_every_fuzz_kind_gets_its_reason(seed):
    for record in fuzz_records(1, seed):
        if record.kind == "deep_nesting" and not FIXED_DEPTH_LIMIT:
            continue
        assert reason_of(record.value, record.key) == record.reason, (record.kind, record.note)


# ----------------------------------------------------------------------------- no hang


@pytest.fixture(scope="module")
def fuzzed() -> list:
    return fuzz_records(40, seed=99)


@pytest.mark.parametrize("kind", sorted(FUZZ_KINDS))
def test_the_worst_records_of_each_kind_decode_in_a_few_milliseconds(kind, fuzzed):
    if kind == "deep_nesting" and not FIXED_DEPTH_LIMIT:
        pytest.skip("pure-Python msgpack: nesting limit is the recursion limit")
    records = [r for r in fuzzed if r.kind == kind]
    slowest = 0.0
    for record in records:
        best = math.inf
        for _ in range(3):  # best of three: the machine is shared
            started = time.perf_counter()
            reason_of(record.value, record.key)
            best = min(best, time.perf_counter() - started)
        slowest = max(slowest, best)
    assert slowest < 0.05, f"{kind}: {slowest * 1000:.1f} ms"
