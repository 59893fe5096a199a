"""The contract's records (events, catalog items, user profiles): decode and validate.

Everything that comes from outside passes through here first. Decoding uses
explicit msgpack caps, so a hostile record cannot make the decoder allocate
without bound, and every field of the contract is checked. A record that
breaks the contract raises :class:`~stream.errors.InvalidRecord` with a short
reason label; the runtime turns that into a dead letter.

>>> raw = encode_event(Event("u1", "i9", "click", 1700000000.0))
>>> decode_event(raw, key=b"u1").item_id
'i9'
>>> decode_event(b"\\xc1", key=None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream.errors.InvalidRecord: record is not valid msgpack: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack

from stream.errors import InvalidRecord

EVENT_TYPES = frozenset(
    {"view", "click", "add_to_cart", "purchase", "rating", "dislike", "forget_user"}
)
DEFAULT_DOMAIN = "default"

#: Largest encoded record accepted, in bytes. Events are ~100 bytes; catalog
#: items with long titles and feature maps stay far below this.
MAX_RECORD_BYTES = 64 * 1024
#: Longest id (user, item, event, domain) in UTF-8 bytes, as the contract says.
MAX_ID_BYTES = 256
#: Longest free-text string (context values, titles) in UTF-8 bytes.
MAX_TEXT_BYTES = 4096
#: Most entries in a context or feature map, and in a list (genres).
MAX_CONTAINER_LEN = 256

# Decoder caps: the decoder refuses anything larger before allocating it.
# (``max_buffer_size`` is the streaming Unpacker's cap; for ``unpackb`` the
# explicit length check in ``_unpack_map`` plays that part.)
_UNPACK_LIMITS = dict(
    max_str_len=MAX_TEXT_BYTES,
    max_bin_len=MAX_TEXT_BYTES,
    max_array_len=MAX_CONTAINER_LEN,
    max_map_len=MAX_CONTAINER_LEN,
    max_ext_len=0,
)


@dataclass(slots=True)
class Event:
    """One user event, as the contract defines it."""

    user_id: str
    item_id: str | None
    event_type: str
    timestamp: float
    value: float | None = None
    event_id: str | None = None
    domain: str = DEFAULT_DOMAIN
    context: dict[str, str | float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The contract's map, without the optional fields that are unset."""
        out: dict[str, Any] = {
            "user_id": self.user_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp,
        }
        if self.item_id is not None:
            out["item_id"] = self.item_id
        if self.value is not None:
            out["value"] = self.value
        if self.event_id is not None:
            out["event_id"] = self.event_id
        if self.domain != DEFAULT_DOMAIN:
            out["domain"] = self.domain
        if self.context:
            out["context"] = self.context
        return out


@dataclass(slots=True)
class Item:
    """A catalog item: an id and open-ended features (title, genres, year, ...)."""

    item_id: str
    features: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0


@dataclass(slots=True)
class UserProfile:
    """Optional side features of a user (age, gender, occupation, ...)."""

    user_id: str
    features: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0


# ----------------------------------------------------------------------------- encoding


def encode_event(event: Event) -> bytes:
    """msgpack bytes of an event, as a producer should write them."""
    return msgpack.packb(event.to_dict(), use_bin_type=True)


def encode_item(item: Item) -> bytes:
    return msgpack.packb(
        {"item_id": item.item_id, "features": item.features, "timestamp": item.timestamp},
        use_bin_type=True,
    )


def encode_profile(profile: UserProfile) -> bytes:
    return msgpack.packb(
        {"user_id": profile.user_id, "features": profile.features, "timestamp": profile.timestamp},
        use_bin_type=True,
    )


# ----------------------------------------------------------------------------- decoding


def decode_event(value: bytes | None, key: bytes | None) -> Event:
    """Decode and validate one ``user-events`` record.

    Parameters
    ----------
    value
        The record's value bytes.
    key
        The record's key bytes; when present it must be the event's ``user_id``
        (events are keyed by user so one user's events stay on one partition).

    Raises
    ------
    InvalidRecord
        With the reason label and a message naming the offending field.
    """
    data = _unpack_map(value)
    event_type = _required_str(data, "event_type", MAX_ID_BYTES)
    if event_type not in EVENT_TYPES:
        raise InvalidRecord(
            "unknown_event_type",
            f"event_type {_clip(event_type)!r} is not one of {sorted(EVENT_TYPES)}",
        )
    user_id = _required_id(data, "user_id")
    if key is not None and key != user_id.encode("utf-8"):
        raise InvalidRecord(
            "key_mismatch", f"record key {_clip(repr(key))} is not the event's user_id"
        )
    item_id = None if event_type == "forget_user" else _required_id(data, "item_id")
    return Event(
        user_id=user_id,
        item_id=item_id,
        event_type=event_type,
        timestamp=_timestamp(data),
        value=_optional_number(data, "value"),
        event_id=_optional_id(data, "event_id"),
        domain=_optional_id(data, "domain") or DEFAULT_DOMAIN,
        context=_context(data),
    )


def decode_item(value: bytes, key: bytes | None) -> Item:
    """Decode and validate one ``item-catalog`` record (a null value is handled by the caller)."""
    data = _unpack_map(value)
    item_id = _required_id(data, "item_id")
    if key is not None and key != item_id.encode("utf-8"):
        raise InvalidRecord("key_mismatch", "record key is not the item's item_id")
    features = _features(data)
    genres = features.get("genres")
    if genres is not None and not (
        isinstance(genres, list) and all(isinstance(g, str) for g in genres)
    ):
        raise InvalidRecord("wrong_type", "features.genres must be a list of strings")
    year = features.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise InvalidRecord("wrong_type", "features.year must be an integer")
    title = features.get("title")
    if title is not None and not isinstance(title, str):
        raise InvalidRecord("wrong_type", "features.title must be a string")
    return Item(item_id=item_id, features=features, timestamp=_timestamp(data, required=False))


def decode_profile(value: bytes, key: bytes | None) -> UserProfile:
    """Decode and validate one ``user-profiles`` record."""
    data = _unpack_map(value)
    user_id = _required_id(data, "user_id")
    if key is not None and key != user_id.encode("utf-8"):
        raise InvalidRecord("key_mismatch", "record key is not the profile's user_id")
    return UserProfile(
        user_id=user_id, features=_features(data), timestamp=_timestamp(data, required=False)
    )


# ----------------------------------------------------------------------------- field checks


def _unpack_map(value: bytes | None) -> dict[Any, Any]:
    if value is None:
        raise InvalidRecord("not_a_map", "record value is null")
    if len(value) > MAX_RECORD_BYTES:
        raise InvalidRecord(
            "too_large", f"record is {len(value)} bytes, the limit is {MAX_RECORD_BYTES}"
        )
    try:
        data = msgpack.unpackb(value, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
    except ValueError as exc:
        # The caps raise ValueError("... exceeds max_..._len"); keep that apart
        # from garbage so the dead-letter reason tells the producer what to fix.
        if "exceeds max" in str(exc):
            raise InvalidRecord("too_large", f"record exceeds a decoder limit: {exc}") from None
        raise InvalidRecord(
            "not_msgpack", f"record is not valid msgpack: {type(exc).__name__}: {exc}"
        ) from None
    except (msgpack.UnpackException, TypeError) as exc:
        # TypeError: e.g. an unhashable map key; UnpackException: the rest.
        raise InvalidRecord(
            "not_msgpack", f"record is not valid msgpack: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRecord("not_a_map", f"record is a msgpack {type(data).__name__}, not a map")
    return data


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_str(name: str, value: Any, max_bytes: int) -> str:
    if type(value) is not str:
        raise InvalidRecord("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    # A character is at most 4 UTF-8 bytes, so short strings need no encoding.
    if len(value) * 4 > max_bytes and len(value.encode("utf-8")) > max_bytes:
        raise InvalidRecord("string_too_long", f"{name} is longer than {max_bytes} bytes")
    return value


def _required_str(data: dict[Any, Any], name: str, max_bytes: int) -> str:
    if name not in data:
        raise InvalidRecord("missing_field", f"required field {name!r} is missing")
    return _check_str(name, data[name], max_bytes)


def _required_id(data: dict[Any, Any], name: str) -> str:
    value = _required_str(data, name, MAX_ID_BYTES)
    if not value:
        raise InvalidRecord("out_of_range", f"{name} must not be empty")
    return value


def _optional_id(data: dict[Any, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    return _check_str(name, value, MAX_ID_BYTES)


#: Event time must be epoch *seconds*: 1e11 s is the year 5138, while epoch
#: milliseconds (a common mistake) are already past 1.6e12.
MAX_TIMESTAMP = 95_617_584_000.0  # 5000-01-01T00:00:00Z
#: Largest magnitude of ``value`` (a rating, dwell seconds, an amount).
MAX_ABS_VALUE = 1e12


def _check_number(name: str, value: Any) -> float:
    # bool is an int subclass; True is not a timestamp.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRecord("wrong_type", f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRecord("non_finite", f"{name} is {number}")
    return number


def _timestamp(data: dict[Any, Any], required: bool = True) -> float:
    if "timestamp" not in data:
        if required:
            raise InvalidRecord("missing_field", "required field 'timestamp' is missing")
        return 0.0
    ts = _check_number("timestamp", data["timestamp"])
    if ts < 0:
        raise InvalidRecord("out_of_range", f"timestamp {ts} is before 1970")
    if ts >= MAX_TIMESTAMP:
        hint = " (milliseconds? the contract wants seconds)" if ts < 1e14 else ""
        raise InvalidRecord("out_of_range", f"timestamp {ts:g} is after the year 5000{hint}")
    return ts


def _optional_number(data: dict[Any, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    number = _check_number(name, value)
    if abs(number) > MAX_ABS_VALUE:
        # Ratings, dwell seconds and amounts never get near this; such a
        # number would only turn scores into infinities downstream.
        raise InvalidRecord("out_of_range", f"{name} {number:g} is beyond +-{MAX_ABS_VALUE:g}")
    return number


def _context(data: dict[Any, Any]) -> dict[str, str | float]:
    raw = data.get("context")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRecord("wrong_type", "context must be a map")
    context: dict[str, str | float] = {}
    for key, value in raw.items():
        name = f"context.{_check_str('context key', key, MAX_ID_BYTES)}"
        if isinstance(value, str):
            context[key] = _check_str(name, value, MAX_TEXT_BYTES)
        else:
            context[key] = _check_number(name, value)
    return context


def _features(data: dict[Any, Any]) -> dict[str, Any]:
    raw = data.get("features", {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRecord("wrong_type", "features must be a map")
    for key in raw:
        _check_str("features key", key, MAX_ID_BYTES)
    for key, value in raw.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRecord("non_finite", f"features.{key} is {value}")
    return raw
