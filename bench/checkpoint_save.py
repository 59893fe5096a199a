"""How long one checkpoint save takes: the time a revoke callback holds the group's heartbeats.

Run: ``python bench/checkpoint_save.py [--models multitask hybrid] [--repeats 3]``
(MovieLens-100K), or at scale:
``python bench/checkpoint_save.py --dataset 'synthetic:users=1000000,items=200000,events=1000000'
[--events N] [--measure-at 250000,500000] [--repeats 2] [--target-users 1000000]``

ML-100K mode (the default): each model learns all of MovieLens-100K, ranks
once (so its caches are warm, as in the service), then is saved
``--repeats`` times with ``CheckpointStore.save``: pickle, HMAC-SHA256
signature, write, fsync, atomic rename. The service warns when a revoke's
saves take over half the consumer session timeout (``consumers/app.py``,
``partitions_revoked``).

Scale mode (``--dataset synthetic:...``): the default model
(``registry.build_model("multitask")`` unless ``--models`` names another)
gets the stream's whole catalog (``add_item``) and every profile
(``add_profile``), as the service's side tables feed a partition's model,
then learns the first ``--events`` events with ``learn_one`` (no ranking
pass; ``learn_one`` itself still trains the ranking heads on a retrieval
pool). After each ``--measure-at`` count of events (and at the end) the
model is checkpointed as a revoke does it, through
``consumers.checkpoint.Checkpoint.save(..., force=True)`` (so
``CheckpointStore.save`` and ``stream.snapshot.write``: one pickle, the
HMAC tag, a temporary file, fsync, rename, directory fsync), and restored
as a new owner does it, through ``CheckpointStore.load`` (read, verify,
unpickle), plus the replay of the catalog and profiles that
``PartitionModels.assign`` makes into a restored model. Each is timed
``--repeats`` times; peak RSS during each save and each restore is the
kernel's high-water mark (reset through ``/proc/self/clear_refs`` before
it; where that is refused, RSS sampled every 20 ms), shown with the RSS
just before it. Users are ``model.n_users``. When the last point holds
fewer than ``--target-users`` users, bytes are fitted as a line in users
over the points (least squares) and read at the target, and save and load
seconds are that size at the largest point's MiB/s.
Progress goes to stderr; the checkpoint directory is a temporary one on
the same disk as ``$TMPDIR``.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka import TopicPartition  # noqa: E402
from memory import hwm_mib, reset_peak, rss_mib  # noqa: E402

from consumers.checkpoint import Checkpoint, CheckpointStore, OffsetLedger  # noqa: E402
from consumers.clients import SESSION_TIMEOUT_MS  # noqa: E402
from consumers.partitions import PartitionState  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402

_KEY = b"k" * 32
_TP = TopicPartition("events", 0)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- memory


class _Peak:
    """Peak RSS over a ``with`` block: VmHWM after a reset, else RSS sampled every 20 ms."""

    def __enter__(self) -> _Peak:
        gc.collect()
        self.before = rss_mib()
        self._hwm = reset_peak()
        self._sampled = self.before
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if not self._hwm:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self._sampled = max(self._sampled, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        hwm = hwm_mib() if self._hwm else None
        self.peak = hwm if hwm is not None else max(self._sampled, rss_mib())


# ----------------------------------------------------------------------------- ML-100K mode


def bench_ml100k(args: argparse.Namespace) -> int:
    events = load_dataset("ml-100k").events
    print(f"{'model':<10} {'size MiB':>9}  seconds per save")
    for name in args.models or [DEFAULT_MODEL, "hybrid"]:
        model = build_model(name)
        for event in events:
            model.learn_one(event)
        model.recommend([events[-1].user_id], 10)
        store = CheckpointStore(tempfile.mkdtemp(prefix="ckpt-bench-"), "bench", _KEY)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            path = store.save(_TP, model, OffsetLedger(), model.version)
            seconds.append(time.perf_counter() - started)
        size = path.stat().st_size / 2**20
        print(f"{name:<10} {size:>9.0f}  " + "  ".join(f"{s:.2f}" for s in seconds))
    return 0


# ----------------------------------------------------------------------------- scale mode


def _measure(
    state: PartitionState, checkpoint: Checkpoint, data: Any, repeats: int
) -> dict[str, Any]:
    """Save and restore ``state``'s model ``repeats`` times, as a revoke and an assign do."""
    store = checkpoint.store
    row: dict[str, Any] = {"save": [], "load": [], "replay": [], "save_peak": [], "load_peak": []}
    for attempt in range(repeats):
        state.dirty = True
        state.saved_at = -float("inf")
        with _Peak() as peak:
            started = time.perf_counter()
            saved = checkpoint.save([state], force=True)
            row["save"].append(time.perf_counter() - started)
        assert saved == 1
        row["save_before"] = peak.before
        row["save_peak"].append(peak.peak)
        row["bytes"] = store.path(_TP).stat().st_size
        _progress(
            f"  save {attempt + 1}/{repeats}: {row['save'][-1]:.2f} s, peak {peak.peak:.0f} MiB"
        )
        with _Peak() as peak:
            started = time.perf_counter()
            restored = store.load(_TP)
            row["load"].append(time.perf_counter() - started)
        assert restored is not None and restored.model.n_users == state.model.n_users
        row["load_before"] = peak.before
        row["load_peak"].append(peak.peak)
        # What PartitionModels.assign does next: the catalog and profiles replayed into it.
        started = time.perf_counter()
        for item in data.items:
            restored.model.add_item(item)
        for profile in data.profiles:
            restored.model.add_profile(profile)
        row["replay"].append(time.perf_counter() - started)
        _progress(
            f"  load {attempt + 1}/{repeats}: {row['load'][-1]:.2f} s "
            f"(+ replay {row['replay'][-1]:.2f} s), peak {peak.peak:.0f} MiB"
        )
        del restored
        gc.collect()
    return row


def _fit(xs: list[float], ys: list[float], x: float) -> float:
    """The least-squares line through (xs, ys), read at ``x`` (a ratio through 0 for one point)."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return ys[-1] * x / xs[-1]
    slope, intercept = statistics.linear_regression(xs, ys)
    return intercept + slope * x


def bench_scale(args: argparse.Namespace) -> int:
    name = (args.models or [DEFAULT_MODEL])[0]
    _progress(f"generating {args.dataset} ...")
    started = time.perf_counter()
    data = load_dataset(args.dataset, progress=_progress)
    data.truth = None
    events = data.events[: args.events] if args.events else data.events
    _progress(
        f"generated {len(data.events):,} events, {len(data.items):,} items, "
        f"{len(data.profiles):,} profiles in {time.perf_counter() - started:.0f} s"
    )
    model = build_model(name)
    started = time.perf_counter()
    for item in data.items:
        model.add_item(item)
    for profile in data.profiles:
        model.add_profile(profile)
    _progress(f"catalog and profiles fed in {time.perf_counter() - started:.0f} s")
    points = sorted({n for n in args.measure_at if 0 < n < len(events)} | {len(events)})
    directory = tempfile.mkdtemp(prefix="ckpt-bench-")
    checkpoint = Checkpoint(CheckpointStore(directory, "bench", _KEY))
    state = PartitionState(_TP, model, OffsetLedger(), model.version)
    rows: list[dict[str, Any]] = []
    learned = 0
    learn_seconds = 0.0
    for point in points:
        started = time.perf_counter()
        tick = started
        for offset in range(learned, point):
            state.ledger.admit(offset)
            model.learn_one(events[offset])
            state.ledger.learned += 1
            if (offset + 1) % 50_000 == 0:
                now = time.perf_counter()
                _progress(
                    f"learned {offset + 1:,} events, {model.n_users:,} users "
                    f"({(now - tick) / 50_000 * 1e6:.0f} us/event)"
                )
                tick = now
        learn_seconds += time.perf_counter() - started
        learned = point
        sizes = model.state_size()
        _progress(f"at {learned:,} events: {model.n_users:,} users; measuring ...")
        row = _measure(state, checkpoint, data, args.repeats)
        row.update(events=learned, users=model.n_users, sizes=sizes)
        rows.append(row)

    print(f"dataset: {args.dataset}; model: {name}; repeats: {args.repeats}")
    print(
        f"learned {learned:,} events in {learn_seconds:.0f} s "
        f"({learn_seconds / learned * 1e6:.0f} us per learn_one); "
        f"catalog {len(data.items):,} items, {len(data.profiles):,} profiles"
    )
    threshold = SESSION_TIMEOUT_MS / 2000
    print(
        f"session timeout: {SESSION_TIMEOUT_MS / 1000:.0f} s; "
        f"warning threshold: {threshold:.1f} s (half the session timeout)"
    )
    print()
    header = (
        f"{'events':>10} {'users':>9} {'MiB':>7} {'B/user':>7}  "
        f"{'save s':<15} {'RSS/peak MiB':<14}  {'load s':<15} {'replay s':>8} {'RSS/peak MiB':<14}"
    )
    print(header)
    for row in rows:
        saves = "/".join(f"{s:.2f}" for s in row["save"])
        loads = "/".join(f"{s:.2f}" for s in row["load"])
        print(
            f"{row['events']:>10,} {row['users']:>9,} {row['bytes'] / 2**20:>7.0f} "
            f"{row['bytes'] / max(row['users'], 1):>7.0f}  {saves:<15} "
            f"{row['save_before']:>5.0f}/{max(row['save_peak']):<8.0f}  {loads:<15} "
            f"{statistics.median(row['replay']):>8.2f} "
            f"{row['load_before']:>5.0f}/{max(row['load_peak']):<8.0f}"
        )
    print()
    print("state_size() at each point:")
    tables = [t for t, v in rows[-1]["sizes"].items() if isinstance(v, int | float)]
    print(f"{'events':>10} " + " ".join(f"{t:>12.12}" for t in tables))
    for row in rows:
        print(f"{row['events']:>10,} " + " ".join(f"{row['sizes'].get(t, 0):>12,}" for t in tables))

    last = rows[-1]
    target = args.target_users
    if last["users"] >= 0.95 * target:
        users = last["users"]
        save_s, load_s = max(last["save"]), max(last["load"])
        size = last["bytes"]
        print(f"\nat {users:,} users (measured):")
    else:
        xs = [float(r["users"]) for r in rows]
        users = target
        size = _fit(xs, [float(r["bytes"]) for r in rows], target)
        # Seconds scale with bytes (pickling and unpickling are linear in the
        # object graph): the largest point's MiB/s, applied to the fitted size.
        save_s = size * max(last["save"]) / last["bytes"]
        load_s = size * max(last["load"]) / last["bytes"]
        print(
            f"\nat {target:,} users (extrapolated: bytes as a line in users through the "
            f"{len(rows)} points, seconds at the largest point's MiB/s; "
            f"reached {last['users']:,}):"
        )
    verdict = (
        "over the session timeout: the group would move the partition mid-save"
        if save_s > SESSION_TIMEOUT_MS / 1000
        else "over half the session timeout: the service warns; the margin is gone"
        if save_s > threshold
        else "within half the session timeout"
    )
    print(
        f"  checkpoint {size / 2**20:,.0f} MiB ({size / users:,.0f} B/user); "
        f"save {save_s:.1f} s ({verdict}); load {load_s:.1f} s"
    )
    if len(rows) >= 2 and len({r["users"] for r in rows}) >= 2:
        slope, intercept = statistics.linear_regression(
            [float(r["users"]) for r in rows], [float(r["bytes"]) for r in rows]
        )
        print(
            f"  fit: {slope:,.0f} B per learned user on top of {intercept / 2**20:,.0f} MiB "
            "(catalog, profiles, item-side tables)"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=None, help="ML-100K: multitask hybrid; scale: the default"
    )
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (ML-100K), 2 (scale)")
    parser.add_argument("--dataset", default="ml-100k", help="ml-100k, or a synthetic:... spec")
    parser.add_argument("--events", type=int, default=None, help="learn the first N events")
    parser.add_argument(
        "--measure-at",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[],
        help="event counts to checkpoint at, besides the last (comma-separated)",
    )
    parser.add_argument("--target-users", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"python bench/checkpoint_save.py {shlex.join(sys.argv[1:])}".rstrip())
    if args.dataset == "ml-100k":
        args.repeats = args.repeats or 3
        print(f"warning threshold: {SESSION_TIMEOUT_MS / 2000:.1f} s (half the session timeout)")
        return bench_ml100k(args)
    args.repeats = args.repeats or 2
    return bench_scale(args)


if __name__ == "__main__":
    sys.exit(main())
