"""Datasets kept as files: a ``.jsonl`` or ``.csv`` of events, plus an optional catalog.

The layout is the contract's dataset PATH::

    some/folder/events.jsonl   one JSON object per line, the event fields
    some/folder/items.jsonl    optional: one catalog item per line
    some/folder/users.jsonl    optional: one user profile per line

or ``events.csv`` with a header of the contract's field names, where an empty
cell is an absent field and ``context`` is JSON text.

Each record is validated by the very code that validates a Kafka record: it is
packed with msgpack and passed to :func:`stream.events.decode_event` (or
``decode_item`` / ``decode_profile``), so a file accepts exactly what a topic
accepts. A bad record raises :class:`~stream.errors.DatasetError` naming the
file, the line and the validator's reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO, TypeVar

import msgpack

from stream.datasets import Dataset
from stream.errors import DatasetError, InvalidRecord
from stream.events import Event, Item, UserProfile, decode_event, decode_item, decode_profile

ITEMS_FILE = "items.jsonl"
USERS_FILE = "users.jsonl"
#: CSV columns parsed as numbers; the rest stay text, as the contract types them.
_NUMERIC_COLUMNS = ("timestamp", "value")

Record = TypeVar("Record", Event, Item, UserProfile)


def load_path(path: Path | str, progress: Callable[[str], None] | None = None) -> Dataset:
    """Load an event file and the ``items.jsonl`` / ``users.jsonl`` beside it.

    Parameters
    ----------
    path
        A ``.jsonl`` or ``.csv`` file of events in time order.
    progress
        Called with a line of text before reading.

    Returns
    -------
    Dataset
        Named after the file. Events out of time order are put in order with a
        stable sort (events with equal timestamps keep file order).

    Raises
    ------
    DatasetError
        If a file is missing or unreadable, or a record breaks the contract.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    if progress is not None:
        progress(f"reading {path}...")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        events = _decode_all(path, _json_records(path), decode_event)
    elif suffix == ".csv":
        events = _decode_all(path, _csv_records(path), decode_event)
    else:
        raise DatasetError(f"{path}: a dataset file must end in .jsonl or .csv")
    events.sort(key=attrgetter("timestamp"))
    items_path, users_path = path.parent / ITEMS_FILE, path.parent / USERS_FILE
    items = _decode_all(items_path, _json_records(items_path), decode_item)
    profiles = _decode_all(users_path, _json_records(users_path), decode_profile)
    return Dataset(name=path.name, events=events, items=items, profiles=profiles)


def write_jsonl(dataset: Dataset, directory: Path | str) -> Path:
    """Write ``dataset`` as ``events.jsonl``, ``items.jsonl`` and ``users.jsonl`` in ``directory``.

    All three are written, empty or not, so no stale catalog from an earlier
    write is read back with the new events.

    Returns
    -------
    Path
        The events file, ready for :func:`load_path`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    events_path = directory / "events.jsonl"
    _write_lines(events_path, (event.to_dict() for event in dataset.events))
    _write_lines(
        directory / ITEMS_FILE,
        (
            {"item_id": i.item_id, "features": i.features, "timestamp": i.timestamp}
            for i in dataset.items
        ),
    )
    _write_lines(
        directory / USERS_FILE,
        (
            {"user_id": p.user_id, "features": p.features, "timestamp": p.timestamp}
            for p in dataset.profiles
        ),
    )
    return events_path


# ----------------------------------------------------------------------------- reading


def _decode_all(
    path: Path,
    records: Iterator[tuple[int, Any]],
    decode: Callable[[bytes, bytes | None], Record],
) -> list[Record]:
    """Validate each (line number, record) as the Kafka path would, or fail naming the line."""
    decoded = []
    for line_no, record in records:
        try:
            raw = msgpack.packb(record, use_bin_type=True)
        except (OverflowError, TypeError, ValueError) as exc:
            # e.g. a JSON integer beyond 64 bits: no producer could send it either.
            raise DatasetError(f"{path}, line {line_no}: cannot be encoded: {exc}") from None
        try:
            decoded.append(decode(raw, None))
        except InvalidRecord as exc:
            raise DatasetError(f"{path}, line {line_no}: {exc.reason}: {exc.message}") from None
    return decoded


def _open(path: Path, newline: str | None = None) -> TextIO:
    try:
        # utf-8-sig: spreadsheets often start a CSV with a byte-order mark,
        # which would otherwise stick to the first column's name.
        return path.open(encoding="utf-8-sig", newline=newline)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) per non-blank line; nothing if a sibling file is absent."""
    if path.name in (ITEMS_FILE, USERS_FILE) and not path.exists():
        # The catalog and profiles are optional; the events file is not, and
        # its absence is reported by _open.
        return
    with _open(path) as lines:
        try:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}, line {line_no}: not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: not UTF-8 text: {exc}") from None


def _csv_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) per CSV row; empty cells are absent fields."""
    with _open(path, newline="") as handle:
        try:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [
                name for name in ("user_id", "event_type", "timestamp") if name not in header
            ]
            if missing:
                raise DatasetError(f"{path}, line 1: the header lacks the column(s) {missing}")
            for row in reader:
                record: dict[str, Any] = {}
                for name, cell in row.items():
                    # DictReader files extra cells under None; the contract has
                    # no such field, so they are ignored like unknown fields.
                    if name is None or cell is None or cell == "":
                        continue
                    record[name] = _csv_cell(path, reader.line_num, name, cell)
                yield reader.line_num, record
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: not UTF-8 text: {exc}") from None
        except csv.Error as exc:
            raise DatasetError(f"{path}, line {reader.line_num}: {exc}") from None


def _csv_cell(path: Path, line_no: int, name: str, cell: str) -> Any:
    if name in _NUMERIC_COLUMNS:
        try:
            return float(cell)
        except ValueError:
            # Leave it text: the validator then reports the mistyped field.
            return cell
    if name == "context":
        try:
            return json.loads(cell)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}, line {line_no}: context is not JSON: {exc}") from None
    return cell


# ----------------------------------------------------------------------------- writing


def _write_lines(path: Path, records: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            # allow_nan=False: NaN is not JSON, and the validator would refuse it.
            out.write(json.dumps(record, ensure_ascii=False, allow_nan=False))
            out.write("\n")
