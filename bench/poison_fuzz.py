"""Poison fuzz run: the real ``streamrec run`` against every kind of bad record, on a broker.

Run: ``python bench/poison_fuzz.py [--per-kind 200] [--broker apache|embedded] [--seed 0]``

1. Start a broker (Apache Kafka from Maven jars when Java is here, else the
   embedded one).
2. Write a stream of good events (synthetic, or MovieLens-100K) plus records
   at the edges of the contract, with ``--per-kind`` fuzzed bad records of
   every kind of ``tests/integration/poison.py``'s ``FUZZ_KINDS`` shuffled
   in, while the real service consumes it.
3. Check every dead letter against the record it came from: key and value
   byte-identical, the expected reason, the original headers; count what
   was learned.

Prints, per kind, how many bad records were tried and how many are in the
dead-letter topic as they should be, and the command that produced it.
Exits 1 if any bad record is missing or wrong, a good record was rejected or
not learned, or the service did not exit cleanly.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.brokers import ApacheKafka, EmbeddedBroker  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from stream.datasets.synthetic import generate_synthetic  # noqa: E402
from tests.integration.poison import FUZZ_KINDS, format_table, run_poison_fuzz, tally  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=200, help="bad records of each kind")
    parser.add_argument("--broker", choices=["apache", "embedded", "auto"], default="auto")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fuzzer and the stream")
    parser.add_argument(
        "--dataset", choices=["synthetic", "ml-100k"], default="synthetic", help="good events"
    )
    parser.add_argument(
        "--events", type=int, default=20_000, help="good events (synthetic, or the first N)"
    )
    parser.add_argument("--edge", type=int, default=400, help="valid records at contract edges")
    parser.add_argument("--model", default=None, help="model of streamrec run (default: its own)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the run")
    args = parser.parse_args()
    kind = args.broker
    if kind == "auto":
        kind = "apache" if ApacheKafka.available()[0] else "embedded"
    if args.dataset == "synthetic":
        good = generate_synthetic(
            n_users=max(50, args.events // 15), n_items=500, n_events=args.events, seed=args.seed
        ).events
    else:
        good = load_dataset("ml-100k").events[: args.events]
    service_args = ("--model", args.model) if args.model else ()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        broker = stack.enter_context(ApacheKafka() if kind == "apache" else EmbeddedBroker())
        outcome = run_poison_fuzz(
            broker.bootstrap_servers,
            Path(tmp),
            n_per_kind=args.per_kind,
            good_events=good,
            n_edge=args.edge,
            seed=args.seed,
            service_args=service_args,
            timeout=args.timeout,
        )
    rows, stray = tally(outcome.bad, outcome.dead_letters, outcome.input_topic)
    consumed = sum(
        value
        for (name, _), value in outcome.metrics.items()
        if name == "streamrec_events_consumed_total"
    )
    command = "python bench/poison_fuzz.py " + shlex.join(sys.argv[1:])
    print(f"command: {command.strip()}")
    print(
        f"broker: {kind}, {len(FUZZ_KINDS)} kinds x {args.per_kind} bad records, "
        f"{len(outcome.good_events):,} good records ({args.dataset} + {args.edge} at the "
        f"contract's edges), seed {args.seed}, run {outcome.seconds:.1f}s, "
        f"service exit code {outcome.exit_code}"
    )
    print(format_table(rows, len(outcome.good_events), consumed))
    problems = [p for row in rows for p in row.problems] + stray
    if consumed != len(outcome.good_events):
        problems.append(f"{consumed:.0f} good records learned of {len(outcome.good_events)}")
    if outcome.exit_code != 0 or "Traceback" in outcome.log:
        problems.append(f"service exit code {outcome.exit_code}; see its log")
    for problem in problems[:50]:
        print(f"PROBLEM: {problem}")
    print("all bad records dead-lettered, all good records learned" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
