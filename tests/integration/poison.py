"""Malformed records of every kind the contract rejects, with the reason each must get."""

from __future__ import annotations

import math
import random

import msgpack

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
