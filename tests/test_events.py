"""Decoding and validation of the contract's records."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.errors import InvalidRecord
from stream.events import (
    MAX_RECORD_BYTES,
    Event,
    Item,
    decode_event,
    decode_item,
    decode_profile,
    encode_event,
    encode_item,
)

GOOD = {"user_id": "u1", "item_id": "i1", "event_type": "click", "timestamp": 1700000000.5}


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def reason_of(value: bytes | None, key: bytes | None = None) -> str:
    with pytest.raises(InvalidRecord) as info:
        decode_event(value, key)
    return info.value.reason


def test_round_trip_keeps_every_field():
    event = Event(
        "u1",
        "i1",
        "purchase",
        12.5,
        value=9.99,
        event_id="e1",
        domain="books",
        context={"device": "ios", "position": 3.0},
    )
    assert decode_event(encode_event(event), b"u1") == event


def test_int_timestamp_and_unknown_extra_fields_are_accepted():
    event = decode_event(pack({**GOOD, "timestamp": 17, "campaign": "x"}), None)
    assert event.timestamp == 17.0 and isinstance(event.timestamp, float)
    assert event.domain == "default"


def test_forget_user_needs_no_item():
    event = decode_event(pack({"user_id": "u1", "event_type": "forget_user", "timestamp": 1}), None)
    assert event.item_id is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xc1", "not_msgpack"),
        (pack(GOOD) + b"\x00", "not_msgpack"),
        (None, "not_a_map"),
        (pack([1, 2]), "not_a_map"),
        (pack({k: v for k, v in GOOD.items() if k != "item_id"}), "missing_field"),
        (pack({k: v for k, v in GOOD.items() if k != "timestamp"}), "missing_field"),
        (pack({**GOOD, "user_id": 42}), "wrong_type"),
        (pack({**GOOD, "timestamp": "yesterday"}), "wrong_type"),
        (pack({**GOOD, "timestamp": True}), "wrong_type"),
        (pack({**GOOD, "context": [1]}), "wrong_type"),
        (pack({**GOOD, "context": {"a": [1]}}), "wrong_type"),
        (pack({**GOOD, "event_type": "teleport"}), "unknown_event_type"),
        (pack({**GOOD, "timestamp": math.nan}), "non_finite"),
        (pack({**GOOD, "value": math.inf}), "non_finite"),
        (pack({**GOOD, "user_id": "u" * 257}), "string_too_long"),
        (pack({**GOOD, "item_id": "é" * 129}), "string_too_long"),
        (pack({**GOOD, "user_id": ""}), "out_of_range"),
        (pack({**GOOD, "timestamp": -1.0}), "out_of_range"),
        (pack({**GOOD, "context": {str(i): i for i in range(300)}}), "too_large"),
        (b"\x00" * (MAX_RECORD_BYTES + 1), "too_large"),
    ],
)
def test_each_contract_violation_has_its_reason(value, reason):
    assert reason_of(value) == reason


def test_key_must_be_the_user():
    assert reason_of(pack(GOOD), key=b"u2") == "key_mismatch"
    assert decode_event(pack(GOOD), key=b"u1").user_id == "u1"


def test_deep_nesting_is_rejected_not_crashing():
    # 5,000 nested one-element arrays: beyond the decoder's stack.
    assert reason_of(b"\x91" * 5000 + b"\x01") == "not_msgpack"


def test_catalog_item_and_profile():
    item = Item("i1", {"title": "Heat", "genres": ["Crime"], "year": 1995}, 3.0)
    assert decode_item(encode_item(item), b"i1") == item
    with pytest.raises(InvalidRecord) as info:
        decode_item(pack({"item_id": "i1", "features": {"genres": "Crime"}}), None)
    assert info.value.reason == "wrong_type"
    profile = decode_profile(pack({"user_id": "u1", "features": {"age": 30}}), b"u1")
    assert profile.features == {"age": 30}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_escape_as_anything_but_invalid_record(data):
    try:
        decode_event(data, None)
    except InvalidRecord as exc:
        assert exc.reason in InvalidRecord.REASONS


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({*GOOD, "value", "context", "domain"})), json_like))
def test_random_maps_are_either_valid_events_or_rejected_with_a_reason(fields):
    try:
        event = decode_event(pack({**fields}), None)
    except InvalidRecord as exc:
        assert exc.reason in InvalidRecord.REASONS
    else:
        assert isinstance(event.user_id, str) and math.isfinite(event.timestamp)
