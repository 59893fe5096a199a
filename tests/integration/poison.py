"""Malformed records of every kind the contract rejects, with the reason each must get.

Two generators, both pure functions of a seed:

* :func:`poison_records` -- the small, fixed mix the black-box test interleaves
  into MovieLens-100K (one record of each of 10 kinds, cycled);
* :func:`fuzz_records` -- ``n`` randomised records of each of the kinds in
  :data:`FUZZ_KINDS` (random bytes, wrong types, NaN and infinities, huge
  strings, maps and arrays, deep nesting, unknown event types, missing keys,
  a wrong key/user pairing, ...), each with the one reason the decoder must
  give; and :func:`edge_valid_records`, records at the edges of the contract
  that must *not* be rejected.

:func:`run_poison_fuzz` drives the real ``streamrec run`` process over a mix
of good and fuzzed records on a broker, and :func:`tally` checks the
dead-letter topic record by record and makes the per-kind table that
``tests/integration/test_poison_fuzz.py`` and ``bench/poison_fuzz.py`` print.

>>> records = fuzz_records(2, seed=1)
>>> len(records) == 2 * len(FUZZ_KINDS), records[0].kind, records[0].reason
(True, 'random_bytes', 'not_msgpack')
"""

from __future__ import annotations

import collections
import math
import random
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from stream.events import EVENT_TYPES, MAX_RECORD_BYTES, Event

GOOD = {"user_id": "poison-user", "item_id": "i1", "event_type": "click", "timestamp": 1.0}


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def poison_records(n: int, seed: int = 0) -> list[tuple[bytes | None, bytes | None, str]]:
    """``n`` bad records as (key, value, expected reason), cycling through the kinds."""
    rng = random.Random(seed)
    kinds = [
        # 0xc1 is the one byte msgpack never uses: whatever follows, not msgpack.
        (
            lambda: (
                b"poison-user",
                b"\xc1" + bytes(rng.randrange(256) for _ in range(rng.randrange(40))),
            ),
            "not_msgpack",
        ),
        (lambda: (b"poison-user", _pack([1, 2, 3])), "not_a_map"),
        (lambda: (b"poison-user", None), "not_a_map"),
        (
            lambda: (b"poison-user", _pack({k: v for k, v in GOOD.items() if k != "item_id"})),
            "missing_field",
        ),
        (lambda: (b"poison-user", _pack({**GOOD, "timestamp": "noon"})), "wrong_type"),
        (lambda: (b"poison-user", _pack({**GOOD, "event_type": "teleport"})), "unknown_event_type"),
        (lambda: (b"poison-user", _pack({**GOOD, "value": math.nan})), "non_finite"),
        (lambda: (b"x" * 300, _pack({**GOOD, "user_id": "x" * 300})), "string_too_long"),
        (
            lambda: (b"poison-user", _pack({**GOOD, "context": {str(i): i for i in range(1000)}})),
            "too_large",
        ),
        (lambda: (b"someone-else", _pack(GOOD)), "key_mismatch"),
    ]
    records = []
    for n_made in range(n):
        make, reason = kinds[n_made % len(kinds)]
        key, value = make()
        records.append((key, value, reason))
    return records


# ============================================================================ the fuzzer

Key = bytes | None
Value = bytes | None


@dataclass(frozen=True)
class BadRecord:
    """One fuzzed record and the dead-letter reason it must get."""

    kind: str
    reason: str
    key: Key
    value: Value
    note: str = ""  # what exactly is wrong, for failure messages


@dataclass(frozen=True)
class GoodRecord:
    """A record at the edge of the contract that must be learned, not rejected."""

    kind: str
    key: Key
    value: bytes
    event: Event  # what it must decode to


#: Characters of 1 to 4 UTF-8 bytes, controls and look-alikes included.
_CHARS = "aZ09_-. \x00\t\u00e9\u00df\u0456\u05d0\u200b\u4e2d\u6f22\U0001f642\U00010348"
#: Byte runs that are never valid UTF-8.
_BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80"]
_NON_EVENT_TYPES = [
    "",
    "Click",
    "VIEW",
    " view",
    "view\n",
    "add-to-cart",
    "forget-user",
    "v\u0456ew",  # Cyrillic i
    "rating\x00",
    "teleport",
]
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _text(rng: random.Random, n_chars: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(n_chars))


def _text_of_bytes(rng: random.Random, n_bytes: int) -> str:
    """A string of exactly ``n_bytes`` UTF-8 bytes, multi-byte characters mixed in."""
    raw = "".join(rng.choices(_CHARS, k=n_bytes // 8)).encode("utf-8")[:n_bytes]
    text = raw.decode("utf-8", errors="ignore")  # drops a character cut in two
    missing = n_bytes - len(text.encode("utf-8"))
    return text + rng.randbytes(missing // 2 + 1).hex()[:missing]


def _id(rng: random.Random, prefix: str = "") -> str:
    return prefix + _text(rng, rng.randrange(1, 20))


def _event_fields(rng: random.Random) -> dict[str, Any]:
    """A valid event map (not ``forget_user``, so that every field is checked)."""
    fields: dict[str, Any] = {
        "user_id": _id(rng, "fuzz-"),
        "item_id": _id(rng, "i-"),
        "event_type": rng.choice(sorted(EVENT_TYPES - {"forget_user"})),
        "timestamp": rng.choice([1_700_000_000.5, rng.uniform(0, 2e9), rng.randrange(2**31)]),
    }
    if rng.random() < 0.5:
        fields["value"] = rng.uniform(-10, 10)
    if rng.random() < 0.5:
        fields["event_id"] = _id(rng, "e-")
    if rng.random() < 0.3:
        fields["domain"] = _id(rng)
    if rng.random() < 0.5:
        fields["context"] = {_id(rng): rng.choice([_id(rng), rng.uniform(-1, 1)]) for _ in range(3)}
    return fields


def _own_key(rng: random.Random, fields: dict[str, Any]) -> Key:
    """The record key a producer should set: the user id, or none at all."""
    user = fields.get("user_id")
    if isinstance(user, str) and rng.random() < 0.8:
        return user.encode("utf-8")
    return None


def _any_key(rng: random.Random) -> Key:
    """Any key at all: the record fails before the key is looked at."""
    return rng.choice([None, b"", b"poison-user", rng.randbytes(rng.randrange(1, 40))])


def _raw_map(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A msgpack map from already-encoded keys and values (to write what packb won't)."""
    n = len(entries)
    header = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return header + b"".join(k + v for k, v in entries)


def _entries(fields: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    return [(_pack(k), _pack(v)) for k, v in fields.items()]


def _put(fields: dict[str, Any], where: str, value: Any) -> None:
    """Put ``value`` in ``fields`` as the field ``where`` (replaced or added).

    ``"context value"`` makes it the context's one entry (``page``);
    ``"event map"`` adds its entries to the event's own.
    """
    if where == "context value":
        fields["context"] = {"page": value}
    elif where == "event map":
        fields.update(value)
    else:
        fields[where] = value


def _with_raw(fields: dict[str, Any], where: str, raw: bytes, context_key: str = "page") -> bytes:
    """The event map of ``fields`` with ``raw`` (msgpack already) as its last field ``where``.

    ``where`` replaces a field of ``fields`` or adds one; ``"context value"``
    makes ``raw`` the one entry (``context_key``) of the context instead.
    """
    if where == "context value":
        where, raw = "context", _raw_map([(_pack(context_key), raw)])
    return _raw_map(
        [*_entries({k: v for k, v in fields.items() if k != where}), (_pack(where), raw)]
    )


def _nested(rng: random.Random, depth: int, leaf: bytes = b"\x01") -> bytes:
    """``depth`` containers (one-element arrays and one-entry maps, mixed) around ``leaf``."""
    return b"".join(rng.choices([b"\x91", b"\x81\xa1k"], k=depth)) + leaf


def _wrong_of(rng: random.Random, allowed: set[str]) -> Any:
    """A value of a type outside ``allowed`` (names: str, number, map, none)."""
    candidates: list[Callable[[], Any]] = [
        lambda: rng.choice([True, False]),
        lambda: rng.randbytes(rng.randrange(0, 16)),
        lambda: [rng.randrange(10) for _ in range(rng.randrange(0, 4))],
        lambda: msgpack.ExtType(rng.randrange(0, 128), b""),
    ]
    if "str" not in allowed:
        candidates.append(lambda: _text(rng, rng.randrange(0, 8)))
    if "number" not in allowed:
        candidates += [
            lambda: rng.randrange(_INT64_MIN, _UINT64_MAX),
            lambda: rng.choice([rng.uniform(-1e9, 1e9), math.nan, math.inf]),
        ]
    if "map" not in allowed:
        candidates.append(lambda: {_id(rng): rng.randrange(10)})
    if "none" not in allowed:
        candidates.append(lambda: None)
    return rng.choice(candidates)()


def _garbage(rng: random.Random) -> tuple[Key, Value, str]:
    # 0xc1 is the one byte msgpack never uses: whatever follows, not msgpack.
    tail = rng.randbytes(rng.randrange(0, 2000))
    return _any_key(rng), b"\xc1" + tail, f"0xc1 + {len(tail)} random bytes"


def _truncated(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    raw = _pack(fields)
    cut = rng.randrange(0, len(raw))  # a msgpack object has no complete proper prefix
    return _own_key(rng, fields), raw[:cut], f"first {cut} of {len(raw)} bytes"


def _trailing_bytes(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    extra = rng.randbytes(rng.randrange(1, 64))
    return _own_key(rng, fields), _pack(fields) + extra, f"{len(extra)} bytes after the map"


def _bad_utf8(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    bad = _text(rng, 3).encode() + rng.choice(_BAD_UTF8) + _text(rng, 2).encode()
    where = rng.choice(["user_id", "item_id", "event_type", "extra value", "map key", "context"])
    # packb(use_bin_type=False) writes bytes with the str type: invalid UTF-8 in a str.
    bad_str = msgpack.packb(bad, use_bin_type=False)
    if where == "map key":
        value = _raw_map([*_entries(fields), (bad_str, _pack(1))])
    elif where in ("extra value", "context"):
        value = _with_raw(fields, "note" if where == "extra value" else "context value", bad_str)
    else:  # in the field's own place
        value = _raw_map([(k, bad_str if k == _pack(where) else v) for k, v in _entries(fields)])
    return _own_key(rng, fields), value, f"invalid UTF-8 in {where}"


def _non_string_map_key(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    bad_key = rng.choice([_pack(rng.randrange(-5, 5)), b"\xc0", b"\xc3", _pack(1.5), b"\x91\x01"])
    bad_key = rng.choice([bad_key, b"\x80"])  # an empty map as a key, too
    entries = _entries(fields)
    if rng.random() < 0.5:
        entries.append((bad_key, _pack("x")))
        where = "the event map"
    else:
        entries = _entries({k: v for k, v in fields.items() if k != "context"})
        entries.append((_pack("context"), _raw_map([(bad_key, _pack("x"))])))
        where = "context"
    return _own_key(rng, fields), _raw_map(entries), f"map key {bad_key!r} in {where}"


def _null_value(rng: random.Random) -> tuple[Key, Value, str]:
    # (Kafka clients refuse a record with neither key nor value.)
    key = rng.choice([b"", b"poison-user", rng.randbytes(rng.randrange(1, 40))])
    return key, None, "null value"


def _not_a_map(rng: random.Random) -> tuple[Key, Value, str]:
    obj = rng.choice(
        [
            rng.randrange(_INT64_MIN, _UINT64_MAX),
            rng.uniform(-1e300, 1e300),
            math.nan,
            None,
            True,
            _text(rng, 10),
            rng.randbytes(10),
            [],
            [_event_fields(rng)],  # a valid event, wrapped in an array
            msgpack.ExtType(rng.randrange(0, 128), b""),
        ]
    )
    return _any_key(rng), _pack(obj), f"a msgpack {type(obj).__name__}"


def _missing_field(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    required = ["user_id", "item_id", "event_type", "timestamp"]
    dropped = rng.sample(required, rng.randrange(1, len(required) + 1))
    for name in dropped:
        del fields[name]
    return _own_key(rng, fields), _pack(fields), f"without {', '.join(dropped)}"


def _wrong_type(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    where = rng.choice(
        ["user_id", "item_id", "event_type", "timestamp", "value", "event_id", "domain"]
        + ["context", "context value", "context key"]
    )
    key = _own_key(rng, fields)  # the user's own key: only the field is wrong
    if where in ("user_id", "item_id", "event_type"):
        fields[where] = _wrong_of(rng, {"str"})
    elif where in ("event_id", "domain"):
        fields[where] = _wrong_of(rng, {"str", "none"})  # null means absent
    elif where == "timestamp":
        fields[where] = _wrong_of(rng, {"number"})
    elif where == "value":
        fields[where] = _wrong_of(rng, {"number", "none"})
    elif where == "context":
        fields[where] = _wrong_of(rng, {"map", "none"})
    elif where == "context value":
        fields["context"] = {"page": _wrong_of(rng, {"str", "number"})}
    else:
        fields["context"] = {rng.randbytes(4): "x"}  # a bin key (a str is required)
    shown = fields["context"] if where.startswith("context ") else fields[where]
    return key, _pack(fields), f"{where}: {shown!r:.60}"


def _non_finite(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    fields.pop("context", None)
    where = rng.choice(["timestamp", "value", "context value"])
    special = rng.choice(["nan", "inf", "-inf", "nan with payload", "negative nan"])
    # (msgpack type byte, struct format, exponent bits, mantissa bits) of float64 / float32
    marker, fmt, mantissa_bits = rng.choice([(b"\xcb", ">Q", 52), (b"\xca", ">I", 23)])
    sign = 1 << (8 * struct.calcsize(fmt) - 1)
    infinity = (sign - 1) ^ ((1 << mantissa_bits) - 1)  # every exponent bit set
    bits = {
        "nan": infinity | (1 << (mantissa_bits - 1)),
        "inf": infinity,
        "-inf": sign | infinity,
        "nan with payload": infinity | rng.randrange(1, 1 << mantissa_bits),
        "negative nan": sign | infinity | rng.randrange(1, 1 << mantissa_bits),
    }[special]
    raw = marker + struct.pack(fmt, bits)
    value = _with_raw(fields, where, raw, context_key="score")
    return _own_key(rng, fields), value, f"{where} = {special} ({len(raw) - 1} bytes)"


def _id_too_long(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    where = rng.choice(["user_id", "item_id", "event_type", "event_id", "domain", "context key"])
    text = _text_of_bytes(rng, rng.randrange(257, 4097))
    if where == "context key":
        fields["context"] = {text: 1.0}
    else:
        fields[where] = text
    return _own_key(rng, fields), _pack(fields), f"{where} of {len(text.encode())} bytes"


def _huge_string(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    n_bytes = rng.randrange(4097, 60_000)
    where = rng.choice(
        ["user_id", "item_id", "event_id", "context value", "extra str", "extra bin"]
    )
    blob: Any = _text_of_bytes(rng, n_bytes)
    if where == "extra bin":
        blob = blob.encode()
    _put(fields, {"extra str": "comment", "extra bin": "payload"}.get(where, where), blob)
    return _own_key(rng, fields), _pack(fields), f"{where} of {n_bytes} bytes"


def _huge_map(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    n = rng.randrange(257, 3000)
    where = rng.choice(["context", "extra field", "event map"])
    _put(fields, "attributes" if where == "extra field" else where, {f"k{i}": i for i in range(n)})
    return _own_key(rng, fields), _pack(fields), f"{where} with {n} entries"


def _huge_array(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    n = rng.randrange(257, 20_000)
    where = rng.choice(["extra field", "value", "context value", "top level"])
    big = list(rng.randbytes(n))
    if where == "top level":
        return _any_key(rng), _pack(big), f"an array of {n}"
    _put(fields, "items" if where == "extra field" else where, big)
    return _own_key(rng, fields), _pack(fields), f"{where} with {n} entries"


def _length_bomb(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    count = rng.randrange(2**16, 2**32)
    header = rng.choice([b"\xdd", b"\xdf"]) + struct.pack(">I", count)  # array32 / map32
    body = header + rng.randbytes(rng.randrange(0, 16))
    if rng.random() < 0.3:
        return _any_key(rng), body, f"top-level header claiming {count} entries"
    return (
        _own_key(rng, fields),
        _raw_map([*_entries(fields), (_pack("extra"), body)]),
        f"extra field header claiming {count} entries",
    )


def _oversized_record(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    target = rng.randrange(MAX_RECORD_BYTES + 1, 2 * MAX_RECORD_BYTES)
    if rng.random() < 0.3:
        return _any_key(rng), rng.randbytes(target), f"{target} random bytes"
    # Otherwise a well-formed event, every container and string within the
    # decoder's caps, only too big as a whole.
    fields["padding"] = [_text_of_bytes(rng, 4000) for _ in range(target // 4000 + 1)]
    value = _pack(fields)
    return _own_key(rng, fields), value, f"well-formed, {len(value)} bytes"


def _deep_nesting(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    depth = rng.randrange(1100, 20_000)  # the decoder's stack holds 1,024 containers
    where = rng.choice(["top level", "extra field", "context", "value"])
    nested = _nested(rng, depth)
    if where == "top level":
        return _any_key(rng), nested, f"{depth} containers deep"
    value = _with_raw(fields, "tree" if where == "extra field" else where, nested)
    return _own_key(rng, fields), value, f"{where} {depth} containers deep"


def _nested_value(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    depth = rng.randrange(1, 500)  # within the decoder's stack: the validator's job
    where = rng.choice(["user_id", "timestamp", "value", "context value"])
    nested = _nested(rng, depth)
    value = _with_raw({k: v for k, v in fields.items() if k != "context"}, where, nested)
    return _own_key(rng, fields), value, f"{where} nested {depth} deep"


def _unknown_event_type(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    event_type = rng.choice(
        [rng.choice(_NON_EVENT_TYPES), _text(rng, rng.randrange(0, 60))]
        + [rng.choice(sorted(EVENT_TYPES)).upper()]
    )
    if event_type in EVENT_TYPES:
        event_type += "!"
    fields["event_type"] = event_type
    return _own_key(rng, fields), _pack(fields), f"event_type {event_type!r}"


def _key_mismatch(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    user = fields["user_id"] = rng.choice([fields["user_id"], "\u00e9l\u00e8ve", "Ann"])
    own = user.encode("utf-8")
    key = rng.choice(
        [
            b"",
            b"someone-else",
            own + b" ",
            own.upper() if own.upper() != own else own + b"2",
            user.encode("utf-16"),
            own[:-1],
            rng.randbytes(rng.randrange(1, 300)),
        ]
    )
    if user == "\u00e9l\u00e8ve" and rng.random() < 0.5:
        key = "e\u0301le\u0300ve".encode()  # the same name, decomposed (NFD)
    if key == own:
        key = own + b"\x00"
    return key, _pack(fields), f"key {key[:20]!r} for user {user[:20]!r}"


def _out_of_range(rng: random.Random) -> tuple[Key, Value, str]:
    fields = _event_fields(rng)
    where = rng.choice(["user_id", "item_id", "timestamp", "future", "value"])
    if where == "timestamp":
        fields["timestamp"] = rng.choice(
            [-1, _INT64_MIN, -rng.uniform(1e-300, 1e300), -5e-324, -1_700_000_000.0]
        )
        return _own_key(rng, fields), _pack(fields), f"timestamp {fields['timestamp']}"
    if where == "future":  # milliseconds by mistake, or garbage far in the future
        fields["timestamp"] = rng.choice([1.7e12, 1e308, 2**63, 9.6e10])
        return _own_key(rng, fields), _pack(fields), f"timestamp {fields['timestamp']}"
    if where == "value":  # a value that would turn scores into infinities
        fields["value"] = rng.choice([1e300, -1e308, 2**62, -1e13])
        return _own_key(rng, fields), _pack(fields), f"value {fields['value']}"
    fields[where] = ""
    return _own_key(rng, fields), _pack(fields), f"empty {where}"


#: Kind name -> (the reason it must get, the maker).
FUZZ_KINDS: dict[str, tuple[str, Callable[[random.Random], tuple[Key, Value, str]]]] = {
    "random_bytes": ("not_msgpack", _garbage),
    "truncated": ("not_msgpack", _truncated),
    "trailing_bytes": ("not_msgpack", _trailing_bytes),
    "invalid_utf8": ("not_msgpack", _bad_utf8),
    "non_string_map_key": ("not_msgpack", _non_string_map_key),
    "deep_nesting": ("not_msgpack", _deep_nesting),
    "null_value": ("not_a_map", _null_value),
    "not_a_map": ("not_a_map", _not_a_map),
    "missing_field": ("missing_field", _missing_field),
    "wrong_type": ("wrong_type", _wrong_type),
    "nested_value": ("wrong_type", _nested_value),
    "unknown_event_type": ("unknown_event_type", _unknown_event_type),
    "nan_or_infinity": ("non_finite", _non_finite),
    "id_too_long": ("string_too_long", _id_too_long),
    "huge_string": ("too_large", _huge_string),
    "huge_map": ("too_large", _huge_map),
    "huge_array": ("too_large", _huge_array),
    "length_bomb": ("too_large", _length_bomb),
    "oversized_record": ("too_large", _oversized_record),
    "out_of_range": ("out_of_range", _out_of_range),
    "key_mismatch": ("key_mismatch", _key_mismatch),
}


def fuzz_records(n_per_kind: int, seed: int = 0) -> list[BadRecord]:
    """``n_per_kind`` bad records of every kind of :data:`FUZZ_KINDS`, kind by kind."""
    rng = random.Random(seed)
    records = []
    for kind, (reason, make) in FUZZ_KINDS.items():
        for _ in range(n_per_kind):
            key, value, note = make(rng)
            records.append(BadRecord(kind, reason, key, value, note))
    return records


# ----------------------------------------------------------------------------- good edges


def edge_valid_records(n: int, seed: int = 0) -> list[GoodRecord]:
    """``n`` records at the edges of the contract, each for its own user: all must be learned.

    Ids of exactly 256 bytes, any Unicode, no key, integer and float32
    numbers, explicit nulls, unknown fields holding anything the decoder
    accepts (deep but not too deep, 256-entry arrays, 4 KiB blobs), a full
    context, a record of exactly the size limit, ``forget_user`` with and
    without an item.
    """
    rng = random.Random(seed)
    makers: list[Callable[[random.Random, str], tuple[Key, bytes, Event, str]]] = [
        _edge_longest_ids,
        _edge_unicode_no_key,
        _edge_integer_and_float32_numbers,
        _edge_explicit_nulls,
        _edge_unknown_fields,
        _edge_full_context,
        _edge_size_limit,
        _edge_forget_user,
    ]
    records = []
    for i in range(n):
        make = makers[i % len(makers)]
        user = f"edge-{i}-" + _text(rng, rng.randrange(0, 8))
        key, value, event, kind = make(rng, user)
        records.append(GoodRecord(kind, key, value, event))
    return records


def _plain(rng: random.Random, user: str, **overrides: Any) -> Event:
    event = Event(
        user_id=user,
        item_id=f"i{rng.randrange(50)}",
        event_type=rng.choice(sorted(EVENT_TYPES - {"forget_user"})),
        timestamp=1_700_000_000.0 + rng.randrange(86_400),
    )
    for name, value in overrides.items():
        setattr(event, name, value)
    return event


def _edge_longest_ids(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    user += _text_of_bytes(rng, 256 - len(user.encode()))
    event = _plain(
        rng,
        user,
        item_id=_text_of_bytes(rng, 256),
        event_id=_text_of_bytes(rng, 256),
        domain=_text_of_bytes(rng, 256),
        context={_text_of_bytes(rng, 256): _text_of_bytes(rng, 4096)},
    )
    return user.encode(), _pack(event.to_dict()), event, "ids_of_256_bytes"


def _edge_unicode_no_key(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    event = _plain(rng, user + _text(rng, 20), item_id=_text(rng, rng.randrange(1, 30)))
    return None, _pack(event.to_dict()), event, "unicode_and_no_key"


def _edge_integer_and_float32_numbers(
    rng: random.Random, user: str
) -> tuple[Key, bytes, Event, str]:
    timestamp = rng.choice([0, 1_700_000_000, 2**31])  # each exact in a float32
    event = _plain(rng, user, timestamp=float(timestamp), value=4.0, context={"n": 3.0})
    if rng.random() < 0.5:
        fields = {**event.to_dict(), "timestamp": timestamp, "value": 4, "context": {"n": 3}}
    else:
        fields = event.to_dict()  # floats, written as float32 below
    value = msgpack.packb(fields, use_bin_type=True, use_single_float=True)
    return user.encode(), value, event, "int_and_float32_numbers"


def _edge_explicit_nulls(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    event = _plain(rng, user)
    fields = {**event.to_dict(), "value": None, "event_id": None, "domain": None, "context": None}
    return user.encode(), _pack(fields), event, "explicit_nulls"


def _edge_unknown_fields(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    event = _plain(rng, user, event_id=f"e-{user}")
    entries = _entries(event.to_dict()) + [
        (_pack("tree"), _nested(rng, rng.randrange(1, 1000))),  # the map is one more level
        (_pack("list"), _pack(list(range(256)))),
        (_pack("blob"), _pack(rng.randbytes(4096))),
        (_pack("ext"), _pack(msgpack.ExtType(7, b""))),
        (_pack("nan"), _pack(math.nan)),  # an unknown field is not checked
        (_pack("bool"), _pack(True)),
    ]
    return user.encode(), _raw_map(entries), event, "unknown_fields"


def _edge_full_context(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    context: dict[str, str | float] = {
        f"c{i}": (rng.uniform(-1e6, 1e6) if i % 2 else _text(rng, 20)) for i in range(256)
    }
    event = _plain(rng, user, context=context, value=rng.uniform(0, 5))
    return user.encode(), _pack(event.to_dict()), event, "context_of_256_entries"


def _edge_size_limit(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    event = _plain(rng, user)
    fields = event.to_dict()
    fields["padding"] = [_text_of_bytes(rng, 4096) for _ in range(15)]
    fields["pad"] = ""
    for _ in range(3):  # the pad's own header grows with it: converge on the limit
        fields["pad"] = "x" * (len(fields["pad"]) + MAX_RECORD_BYTES - len(_pack(fields)))
    value = _pack(fields)
    assert len(value) == MAX_RECORD_BYTES, len(value)
    return user.encode(), value, event, "exactly_64_KiB"


def _edge_forget_user(rng: random.Random, user: str) -> tuple[Key, bytes, Event, str]:
    event = Event(user_id=user, item_id=None, event_type="forget_user", timestamp=1.7e9)
    fields = event.to_dict()
    if rng.random() < 0.5:
        fields["item_id"] = "ignored"  # not needed, and not looked at
    return user.encode(), _pack(fields), event, "forget_user"


# ============================================================================ a run, checked

#: Header names the fuzz run tags records with (kept by the dead letters).
BAD_ID_HEADER = "fuzz.bad"
GOOD_ID_HEADER = "fuzz.good"


@dataclass
class KindRow:
    """One line of the per-kind table."""

    kind: str
    reason: str
    tried: int = 0
    dead_lettered: int = 0  # exactly once, byte-identical, with the right reason
    problems: list[str] = field(default_factory=list)


@dataclass
class FuzzOutcome:
    """What a fuzz run sent and what came out of the service."""

    bad: list[BadRecord]
    good_events: list[Event]  # every good record's event, in the order sent
    input_topic: str
    dead_letters: list[Any]  # kafka-python ConsumerRecords of the dead-letter topic
    recommendations: list[Any]
    metrics: dict[tuple[str, tuple], float]
    exit_code: int
    seconds: float
    log: str


def tally(
    bad: list[BadRecord], dead_letters: Iterable[Any], input_topic: str
) -> tuple[list[KindRow], list[str]]:
    """Match every dead letter to the bad record it came from (by its ``fuzz.bad`` header).

    Returns the per-kind rows and the problems that belong to no kind (a good
    record dead-lettered, a letter from nowhere). A bad record counts as
    dead-lettered only if exactly one letter has its key and value
    byte-identical, the expected ``streamrec.error.reason``, its original
    headers and the source topic.
    """
    rows = {kind: KindRow(kind, reason) for kind, (reason, _) in FUZZ_KINDS.items()}
    for record in bad:
        rows.setdefault(record.kind, KindRow(record.kind, record.reason)).tried += 1
    letters: dict[int, list[Any]] = collections.defaultdict(list)
    stray: list[str] = []
    for letter in dead_letters:
        headers = dict(letter.headers or [])
        if BAD_ID_HEADER in headers:
            letters[int(headers[BAD_ID_HEADER])].append(letter)
        elif GOOD_ID_HEADER in headers:
            reason = headers.get("streamrec.error.reason", b"?").decode()
            stray.append(f"good record {headers[GOOD_ID_HEADER].decode()} dead-lettered: {reason}")
        else:
            stray.append(f"dead letter with no fuzz header: key {letter.key!r:.60}")
    for index, record in enumerate(bad):
        row = rows[record.kind]
        got = letters.pop(index, [])
        problem = _letter_problem(record, index, got, input_topic)
        if problem is None:
            row.dead_lettered += 1
        else:
            row.problems.append(f"#{index} ({record.note}): {problem}")
    stray += [f"dead letter for unknown bad record #{index}" for index in letters]
    return [row for row in rows.values() if row.tried], stray


def _letter_problem(record: BadRecord, index: int, got: list[Any], topic: str) -> str | None:
    if not got:
        return "not in the dead-letter topic"
    if len(got) > 1:
        return f"dead-lettered {len(got)} times"
    letter = got[0]
    headers = dict(letter.headers or [])
    reason = headers.get("streamrec.error.reason", b"").decode()
    if reason != record.reason:
        message = headers.get("streamrec.error.message", b"").decode(errors="replace")
        return f"reason {reason!r}, expected {record.reason!r} ({message[:120]})"
    if letter.key != record.key:
        return f"key changed: {letter.key!r:.60} != {record.key!r:.60}"
    if letter.value != record.value:
        return "value changed"
    if headers.get(BAD_ID_HEADER) != str(index).encode() or headers.get("fuzz.kind") is None:
        return "original headers lost"
    if headers.get("streamrec.source.topic") != topic.encode():
        return f"source topic {headers.get('streamrec.source.topic')!r}"
    if not headers.get("streamrec.error.message") or not headers.get("streamrec.source.offset"):
        return "error message or source offset header missing"
    return None


def format_table(rows: list[KindRow], good_sent: int, good_processed: float) -> str:
    """The per-kind table: tried and dead-lettered (unchanged, right reason) per kind."""
    width = max(len(row.kind) for row in rows)
    lines = [f"{'kind':<{width}}  {'reason':<18} {'tried':>8} {'dead-lettered':>14}"]
    for row in rows:
        flag = "" if row.dead_lettered == row.tried else "  <-- MISSING OR WRONG"
        lines.append(
            f"{row.kind:<{width}}  {row.reason:<18} {row.tried:>8,} {row.dead_lettered:>14,}{flag}"
        )
    tried = sum(row.tried for row in rows)
    lettered = sum(row.dead_lettered for row in rows)
    lines.append(f"{'all bad records':<{width}}  {'':<18} {tried:>8,} {lettered:>14,}")
    lines.append(
        f"{'good records':<{width}}  {'(learned)':<18} {good_sent:>8,} {good_processed:>14,.0f}"
    )
    return "\n".join(lines)


def run_poison_fuzz(
    bootstrap_servers: str,
    workdir: Path,
    *,
    n_per_kind: int,
    good_events: list[Event],
    n_edge: int,
    seed: int = 0,
    prefix: str | None = None,
    service_args: tuple[str, ...] = (),
    timeout: float = 300,
) -> FuzzOutcome:
    """Run ``streamrec run`` over good events with fuzzed bad records shuffled in.

    Good events keep their order; each bad record goes in at a random place.
    Every record carries a ``fuzz.bad`` or ``fuzz.good`` header with its
    index, so a dead letter can be traced to the record it came from. Waits
    until the service has accounted for every record, then stops it with
    SIGTERM and reads the dead-letter and recommendation topics.
    """
    from kafka import KafkaProducer

    from .service_process import ServiceProcess, read_topic, wait_until

    rng = random.Random(seed)
    bad = fuzz_records(n_per_kind, seed)
    edges = edge_valid_records(n_edge, seed)
    good: list[tuple[Key, bytes, Event]] = [
        (e.user_id.encode(), _pack(e.to_dict()), e) for e in good_events
    ]
    good += [(r.key, r.value, r.event) for r in edges]
    slots = sorted(rng.randrange(len(good) + 1) for _ in bad)
    order = list(range(len(bad)))
    rng.shuffle(order)
    prefix = prefix or f"fuzz{time.time_ns() % 10**9}"
    topics = {
        name: f"{prefix}-{name}" for name in ("input", "catalog", "profiles", "output", "dlq")
    }
    started = time.monotonic()
    with ServiceProcess(bootstrap_servers, topics, workdir, *service_args) as service:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers.split(","),
            acks="all",
            linger_ms=20,
            max_request_size=4 * 1024 * 1024,
        )
        try:
            next_bad = 0
            for position in range(len(good) + 1):
                while next_bad < len(slots) and slots[next_bad] <= position:
                    index = order[next_bad]
                    record = bad[index]
                    headers = [
                        (BAD_ID_HEADER, str(index).encode()),
                        ("fuzz.kind", record.kind.encode()),
                    ]
                    producer.send(
                        topics["input"], key=record.key, value=record.value, headers=headers
                    )
                    next_bad += 1
                if position < len(good):
                    key, value, _ = good[position]
                    headers = [(GOOD_ID_HEADER, str(position).encode())]
                    producer.send(topics["input"], key=key, value=value, headers=headers)
            producer.flush()
        finally:
            producer.close(timeout=10)
        total = len(good) + len(bad)

        def accounted() -> bool:
            done = service.total("streamrec_events_consumed_total")
            rejected = service.total("streamrec_events_invalid_total")
            acked = service.total("streamrec_dlq_published_total")
            return done + rejected >= total and acked >= rejected

        wait_until(accounted, timeout, f"{total} records accounted for", service)
        metrics = service.scrape() or {}
        exit_code = service.terminate()
        log = service.log_path.read_text(errors="replace")
    seconds = time.monotonic() - started
    return FuzzOutcome(
        bad=bad,
        good_events=[event for _, _, event in good],
        input_topic=topics["input"],
        dead_letters=read_topic(bootstrap_servers, topics["dlq"]),
        recommendations=read_topic(bootstrap_servers, topics["output"]),
        metrics=metrics,
        exit_code=exit_code,
        seconds=seconds,
        log=log,
    )
