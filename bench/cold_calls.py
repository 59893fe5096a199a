"""What a compiled call costs warm and cold: why the evaluation loop is slower than its parts.

Run: ``python bench/cold_calls.py [--events 20000] [--sweep-mb 32]``

Learns the first ``--events`` MovieLens-100K events with the default model
(ranking for each, as ``streamrec evaluate`` does), keeps the arguments of
its last compiled pool call (``stream.multitask.ranking_pass.gather_pool``), and then
times that same call two ways:

- warm: called over and over, so its code and data stay in the CPU caches;
- cold: each call preceded by a sweep over ``--sweep-mb`` of memory, which
  pushes them out, as the rest of an event's work does inside the loop.

So is one ``learn_one`` of a River head on a 21-feature row (what the like
head does for every event). A compiled function that does nothing is timed
the same two ways, with one array argument and with fifteen: what is left is
the cost of getting into compiled code at all, which grows with the
arguments it unpacks.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stream.multitask.retrieval as retrieval  # noqa: E402
from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation import prequential  # noqa: E402
from stream.multitask import FEATURE_NAMES  # noqa: E402
from stream.registry import build_model  # noqa: E402


@numba.njit(cache=True)
def _nothing(values):  # noqa: ANN001, ANN202
    return values.shape[0]


@numba.njit(cache=True)
def _nothing_with_15_arrays(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o):  # noqa: ANN001, ANN202, E741, PLR0913
    return a.shape[0]


def _median_us(call, before, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        before()
        started = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - started)
    return float(np.median(times)) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--sweep-mb", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()

    captured: list[tuple] = []
    original = retrieval.gather_pool

    def capture(*call_args):  # noqa: ANN002, ANN202
        captured[:] = [call_args]
        return original(*call_args)

    retrieval.gather_pool = capture
    data = load_dataset("ml-100k")
    model = build_model("multitask")
    prequential(model, data.events[: args.events], catalog=data.items, profiles=data.profiles)
    retrieval.gather_pool = original
    ranking_args = captured[0]

    sweep = np.ones(args.sweep_mb * 1024 * 1024 // 8)
    small = np.zeros(4)
    fifteen = [np.zeros(4) for _ in range(15)]

    def evict() -> None:
        sweep.sum()

    def no_op() -> None:
        pass

    # A River head learning one feature row, as every event's like head does.
    head = copy.deepcopy(model._heads.like.model)
    row = {name: 0.1 * n for n, name in enumerate(FEATURE_NAMES)}

    rows = [
        ("pool call (gather_pool)", lambda: original(*ranking_args)),
        ("River LogisticRegression.learn_one", lambda: head.learn_one(row, True)),
        ("compiled function doing nothing", lambda: _nothing(small)),
        ("  the same with 15 array arguments", lambda: _nothing_with_15_arrays(*fifteen)),
    ]
    print(("command: python bench/cold_calls.py " + shlex.join(sys.argv[1:])).rstrip())
    print(f"state after {args.events:,} MovieLens-100K events; median of {args.repeats} calls")
    print(f"{'call':34s} {'warm us':>9s} {'cold us':>9s}")
    for label, call in rows:
        call()  # compiled and loaded before timing
        warm = _median_us(call, no_op, args.repeats)
        cold = _median_us(call, evict, args.repeats)
        print(f"{label:34s} {warm:9.1f} {cold:9.1f}")
    print(f"(cold: each call after a sweep over {args.sweep_mb} MB of memory)")


if __name__ == "__main__":
    main()
