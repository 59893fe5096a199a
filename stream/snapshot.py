"""Model snapshots: one signed file that is verified before anything in it is trusted.

A snapshot holds a trained model and a small JSON header (model name and
version, when it was written, and whatever the writer adds, such as the
Kafka offsets a checkpoint reflects). The model itself is pickled, because
River's learners and our own signal tables have no other complete
serialisation; unpickling runs code, so a file is only unpickled after its
HMAC-SHA256 tag has been checked against a key the operator holds. A file
changed by one bit, truncated, or signed with another key is refused with
:class:`~stream.errors.SnapshotError` before its header is even parsed.

File layout::

    b"STREAMREC-SNAPSHOT\\n"         magic line
    uint32 big-endian                header length
    header                           UTF-8 JSON object
    payload                          pickle (protocol 5) of the model
    32 bytes                         HMAC-SHA256(key, everything above)

Files are written to a temporary name in the same directory, flushed to disk
and renamed, so a crash mid-write leaves the previous snapshot intact.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.errors import SnapshotError

MAGIC = b"STREAMREC-SNAPSHOT\n"
#: 2: the multitask model as parts (retrieval, then ranking); files of 1 are refused.
FORMAT_VERSION = 2
_TAG_BYTES = 32
#: Keys shorter than this are refused: HMAC is only as strong as its key.
MIN_KEY_BYTES = 16
#: Environment variable holding the signing key (text; at least MIN_KEY_BYTES bytes).
KEY_ENV = "STREAMREC_SNAPSHOT_KEY"


@dataclass
class Snapshot:
    """What a snapshot file holds: the model and its header."""

    model: Any
    header: dict[str, Any] = field(default_factory=dict)


def load_key(key_file: str | os.PathLike[str] | None = None) -> bytes:
    """The signing key: from ``key_file`` if given, else from ``$STREAMREC_SNAPSHOT_KEY``.

    Raises SnapshotError, saying how to provide one, when neither is set or
    the key is too short. The key itself never appears in a message.
    """
    if key_file:
        path = Path(key_file)
        try:
            key = path.read_bytes().strip()
        except OSError as error:
            raise SnapshotError(f"cannot read snapshot key file {path}: {error.strerror}") from None
        source = f"key file {path}"
    else:
        text = os.environ.get(KEY_ENV, "")
        if not text:
            raise SnapshotError(
                f"snapshots are signed and verified with a secret key: set {KEY_ENV} "
                "or pass --snapshot-key-file (at least 16 bytes, e.g. from "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        key = text.strip().encode("utf-8")
        source = KEY_ENV
    if len(key) < MIN_KEY_BYTES:
        raise SnapshotError(f"the snapshot key from {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def to_bytes(snapshot: Snapshot, key: bytes) -> bytes:
    """The signed file contents of ``snapshot``."""
    header = {"format": FORMAT_VERSION, "written_at": time.time(), **snapshot.header}
    header_bytes = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    body = io.BytesIO()
    body.write(MAGIC)
    body.write(struct.pack(">I", len(header_bytes)))
    body.write(header_bytes)
    pickle.dump(snapshot.model, body, protocol=5)
    signed = body.getvalue()
    return signed + hmac.new(key, signed, hashlib.sha256).digest()


def from_bytes(data: bytes, key: bytes, *, source: str = "snapshot") -> Snapshot:
    """Verify ``data``'s tag with ``key``, then (and only then) parse and unpickle it."""
    if len(data) < len(MAGIC) + 4 + _TAG_BYTES or not data.startswith(MAGIC):
        raise SnapshotError(f"{source} is not a streamrec snapshot (bad magic or truncated)")
    signed, tag = data[:-_TAG_BYTES], data[-_TAG_BYTES:]
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise SnapshotError(
            f"{source} failed authentication: it was changed after it was written, "
            "or it was signed with a different key; refusing to load it"
        )
    (header_length,) = struct.unpack(">I", signed[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(signed[start : start + header_length].decode("utf-8"))
    except ValueError as error:
        raise SnapshotError(
            f"{source} is authentic but its header is unreadable: {error}"
        ) from error
    # Checked before unpickling: an older file names classes that may be gone.
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(
            f"{source} has format {header.get('format')!r}; this version of streamrec reads "
            f"format {FORMAT_VERSION}: pretrain or checkpoint the model again"
        )
    try:
        model = pickle.loads(signed[start + header_length :])  # noqa: S301 - authenticated above
    except (ImportError, AttributeError) as error:
        raise SnapshotError(
            f"{source} was written by another version of streamrec ({error}): "
            "pretrain or checkpoint the model again"
        ) from error
    except (ValueError, pickle.UnpicklingError, EOFError) as error:
        # Only reachable with the right key: a writer bug, or a model format
        # the model itself refuses (its message says which).
        raise SnapshotError(f"{source} is authentic but unreadable: {error}") from error
    return Snapshot(model=model, header=header)


def write(path: str | os.PathLike[str], snapshot: Snapshot, key: bytes) -> Path:
    """Write ``snapshot`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_bytes(snapshot, key)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return path


def read(path: str | os.PathLike[str], key: bytes) -> Snapshot:
    """Read and verify the snapshot at ``path`` (SnapshotError: missing, tampered, unreadable)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot at {path}") from None
    except OSError as error:
        raise SnapshotError(f"cannot read snapshot {path}: {error.strerror}") from None
    return from_bytes(data, key, source=f"snapshot {path}")


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: on POSIX the directory entry must be flushed too."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. some network filesystems); the rename still happened
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
