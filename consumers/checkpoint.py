"""Checkpoints: each input partition's model saved with the offset it reflects.

Events are keyed by user, so a partition's users live in one worker's model
for that partition (see :mod:`consumers.partitions`). What a checkpoint
stores per partition is one signed snapshot file (:mod:`stream.snapshot`)
holding the model *and* the next offset it has not learned, written in one
atomic rename: state and offset can never disagree on disk.

Recovery rules (see docs/reliability.md for every failure scenario):

- A partition with a checkpoint resumes at the checkpoint's offset with the
  checkpoint's model: nothing learned twice, nothing skipped.
- Events between that offset and the group's committed offset were already
  published (their output was acknowledged, or their transaction committed,
  before the commit). They are learned again *silently*: into the model,
  without publishing, so the model catches up and no list goes backwards.
- A partition without a checkpoint starts from the group's committed offset
  (or the start of the topic) with a fresh model, or with the warm-start
  snapshot when one is configured.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from stream import snapshot
from stream.errors import SnapshotError
from stream.model import Recommender

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class OffsetLedger:
    """What one partition's model has folded in, carried inside its checkpoint.

    The fault tests read it back to count events reflected in the model:
    ``learned + invalid`` must equal the records produced, with no
    ``redelivered`` record learned (they are skipped) and no ``gaps``.
    """

    first_offset: int = -1  # the first record this lineage of state saw (-1: none yet)
    next_offset: int = 0
    learned: int = 0
    invalid: int = 0
    redelivered: int = 0  # records below next_offset seen again: skipped, not learned
    gaps: int = 0  # offsets jumped over (transaction markers, compaction, or loss)

    def admit(self, offset: int) -> bool:
        """Whether the record at ``offset`` is new to the model (and account for it)."""
        if self.first_offset < 0:
            self.first_offset = offset
        elif offset < self.next_offset:
            self.redelivered += 1
            return False
        elif offset > self.next_offset:
            self.gaps += offset - self.next_offset
        self.next_offset = offset + 1
        return True

    def to_dict(self) -> dict[str, int]:
        return {
            "first_offset": self.first_offset,
            "next_offset": self.next_offset,
            "learned": self.learned,
            "invalid": self.invalid,
            "redelivered": self.redelivered,
            "gaps": self.gaps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OffsetLedger:
        known = {name: int(data[name]) for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass
class Restored:
    """A partition's checkpoint, read back and verified."""

    model: Recommender
    ledger: OffsetLedger
    model_version: str
    written_at: float


class CheckpointStore:
    """Signed checkpoint files under ``<state_dir>/<group>/<topic>-<partition>.ckpt``.

    Parameters
    ----------
    state_dir
        Directory shared by the group's workers (a volume they all mount), so
        a partition's state can follow the partition to another worker.
    group_id
        The consumer group: two groups never read each other's state.
    key
        The HMAC key snapshots are signed and verified with.
    """

    def __init__(self, state_dir: str | os.PathLike[str], group_id: str, key: bytes) -> None:
        self.directory = Path(state_dir) / _UNSAFE.sub("_", group_id)
        self.key = key

    def path(self, tp: TopicPartition) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', tp.topic)}-{tp.partition}.ckpt"

    def save(
        self, tp: TopicPartition, model: Recommender, ledger: OffsetLedger, model_version: str
    ) -> Path:
        header = {
            "kind": "checkpoint",
            "topic": tp.topic,
            "partition": tp.partition,
            "model": model.name,
            "model_version": model_version,
            "ledger": ledger.to_dict(),
        }
        return snapshot.write(self.path(tp), snapshot.Snapshot(model, header), self.key)

    def load(self, tp: TopicPartition) -> Restored | None:
        """The partition's checkpoint, None if it has none; SnapshotError if it is bad."""
        path = self.path(tp)
        if not path.exists():
            return None
        loaded = snapshot.read(path, self.key)
        header = loaded.header
        if header.get("kind") != "checkpoint" or (header.get("topic"), header.get("partition")) != (
            tp.topic,
            tp.partition,
        ):
            raise SnapshotError(f"{path} is not the checkpoint of {tp.topic}[{tp.partition}]")
        if not isinstance(loaded.model, Recommender):
            raise SnapshotError(f"{path} does not hold a model")
        return Restored(
            model=loaded.model,
            ledger=OffsetLedger.from_dict(header.get("ledger", {})),
            model_version=str(header.get("model_version", loaded.model.version)),
            written_at=float(header.get("written_at", 0.0)),
        )


class Checkpoint:
    """Make every partition's state durable at one consistent point.

    Called between batches, once the batch's output is in Kafka and its input
    offsets are committed (at-least-once: acknowledged, then committed;
    exactly-once: the transaction holding both has committed). Steps, in order:

    1. pick the partitions to save: all of ``partitions`` when forced (on
       revoke, shutdown, or after a ``forget_user``), else those that learned
       something and whose last save is older than the interval;
    2. for each, pickle its model with its :class:`OffsetLedger` (the next
       offset it has not learned) and model version into one snapshot,
       signed with HMAC-SHA256;
    3. write it to a temporary file, fsync, and rename it over the previous
       checkpoint (then fsync the directory): a crash at any point leaves
       either the old or the new checkpoint, whole;
    4. mark the partition clean and report the time of success.

    Saving after the commit, never before, is what keeps exactly-once exact:
    a checkpoint can lag the committed offsets (that gap is replayed
    silently on recovery) but can never be ahead of what was published.

    Parameters
    ----------
    store
        Where checkpoints go.
    interval
        Seconds between routine saves of a partition that keeps learning.
    on_saved
        Called with the wall-clock time after each successful round.
    """

    def __init__(
        self,
        store: CheckpointStore,
        interval: float = 30.0,
        on_saved: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.on_saved = on_saved

    def save(self, partitions: Iterable[Any], *, force: bool = False) -> int:
        """Save what is due among ``partitions`` (:class:`~consumers.partitions.PartitionState`)."""
        now = time.monotonic()
        saved = 0
        for state in partitions:
            due = state.dirty and now - state.saved_at >= self.interval
            if not (force and state.dirty) and not due:
                continue
            started = time.perf_counter()
            self.store.save(state.tp, state.model, state.ledger, state.model_version)
            state.dirty = False
            state.saved_at = now
            saved += 1
            log.debug(
                "checkpoint %s[%d] at offset %d in %.2fs",
                state.tp.topic,
                state.tp.partition,
                state.ledger.next_offset,
                time.perf_counter() - started,
            )
        if saved and self.on_saved is not None:
            self.on_saved(time.time())
        return saved
