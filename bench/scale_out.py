"""Partitions and the item-side sync, offline: HR@10 for P partitions, with and without the sync.

Run: ``python bench/scale_out.py [--dataset ml-100k] [--limit N] [--partitions 1,2,4,8]
[--rate 1000] [--interval-s 1.0] [--sync-every 50,250,2000]``

The service keeps one model per input partition and each learns only its
own users (events are keyed by user). This runs ``streamrec evaluate``'s
prequential pass (``evaluate_one``) over
:class:`~stream.evaluation.partitioned.PartitionedModel`: P copies of the
default model, events routed by user, and, with the sync, each copy handing
its item-side changes to the others after every ``sync_every`` of its own
events. One row per (P, sync): HR@10, HR@10 relative to P = 1, records and
MiB the sync moved, and events/s.

The sync interval of the service is in seconds; offline it is in events:
``sync_every = rate / P x interval``, the events one partition sees per
interval when ``--rate`` events/s (the whole stream's) spread over P
partitions. ``--sync-every`` adds rows at fixed event counts (the
sensitivity to staleness). The Kafka half of the scale-out measurement
(workers through real Apache Kafka) is not in this script yet.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation.partitioned import PartitionedModel  # noqa: E402
from stream.evaluation.run import evaluate_one  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--limit", type=int, default=None, help="first N events (default all)")
    parser.add_argument("--partitions", default="1,2,4,8")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s of the stream")
    parser.add_argument("--interval-s", type=float, default=1.0, help="the sync interval")
    parser.add_argument("--sync-every", default="", help="extra rows at fixed event counts")
    args = parser.parse_args()
    print("$ python bench/scale_out.py " + shlex.join(sys.argv[1:]), flush=True)
    data = load_dataset(args.dataset)
    events = data.events[: args.limit] if args.limit else data.events
    print(f"{args.dataset}: {len(events):,} events; model {DEFAULT_MODEL}; "
          f"interval {args.interval_s} s at {args.rate:g} events/s", flush=True)  # fmt: skip
    extra = [int(n) for n in args.sync_every.split(",") if n]
    print(f"{'P':>3} {'sync_every':>10} {'HR@10':>7} {'vs P=1':>7} {'records':>9} "
          f"{'MiB':>7} {'events/s':>9}", flush=True)  # fmt: skip
    base = None
    for partitions in (int(p) for p in args.partitions.split(",")):
        default_every = max(1, round(args.rate / partitions * args.interval_s))
        runs: list[int | None] = [None] if partitions == 1 else [None, default_every, *extra]
        for every in runs:
            model = PartitionedModel(lambda: build_model(DEFAULT_MODEL), partitions, every)
            started = time.perf_counter()
            summary = evaluate_one(model, data, events, k=10)
            hr = summary["hr@10"]
            base = hr if base is None else base
            label = "off" if every is None else str(every)
            rate = len(events) / (time.perf_counter() - started)
            print(f"{partitions:>3} {label:>10} {hr:>7.4f} {hr / base:>7.3f} "
                  f"{model.records_sent:>9,} {model.bytes_sent / 2**20:>7.1f} "
                  f"{rate:>9,.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
