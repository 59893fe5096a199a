"""How long one checkpoint save takes: the time a revoke callback holds the group's heartbeats.

Run: ``python bench/checkpoint_save.py [--models multitask hybrid] [--repeats 3]``

Each model learns all of MovieLens-100K, ranks once (so its caches are
warm, as in the service), then is saved ``--repeats`` times with
``CheckpointStore.save``: pickle, HMAC-SHA256 signature, write, fsync,
atomic rename. The service warns when a revoke's saves take over half the
consumer session timeout (``consumers/app.py``, ``partitions_revoked``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import TopicPartition  # noqa: E402

from consumers.checkpoint import CheckpointStore, OffsetLedger  # noqa: E402
from consumers.clients import SESSION_TIMEOUT_MS  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from stream.registry import build_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["multitask", "hybrid"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    events = load_dataset("ml-100k").events
    print(f"python bench/checkpoint_save.py {shlex.join(sys.argv[1:])}".rstrip())
    print(f"warning threshold: {SESSION_TIMEOUT_MS / 2000:.1f} s (half the session timeout)")
    print(f"{'model':<10} {'size MiB':>9}  seconds per save")
    for name in args.models:
        model = build_model(name)
        for event in events:
            model.learn_one(event)
        model.recommend([events[-1].user_id], 10)
        store = CheckpointStore(tempfile.mkdtemp(prefix="ckpt-bench-"), "bench", b"k" * 32)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            path = store.save(TopicPartition("events", 0), model, OffsetLedger(), model.version)
            seconds.append(time.perf_counter() - started)
        size = path.stat().st_size / 2**20
        print(f"{name:<10} {size:>9.0f}  " + "  ".join(f"{s:.2f}" for s in seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
