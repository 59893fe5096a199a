"""Where one event's time goes in ``streamrec evaluate``: microseconds per event, by stage.

Run: ``python bench/stage_costs.py [--dataset ml-100k] [--limit 20000] [--model multitask]``
(``--limit 0``: every event.)

The prequential loop runs as ``streamrec evaluate`` runs it, with a timer
around each stage of the model. Stages nest (``recommend`` contains
its inputs and the compiled ranking call), so the column does not add up; the
``total`` line is the whole loop, evaluator included. Timers cost about
0.3 us each, a few percent of the total.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation import prequential  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402

#: (label, owners, method): the method is timed on each named attribute of
#: the model ("" is the model itself; "module:NAME" is a function of the
#: module the model's class is defined in), in display order.
STAGES = [
    ("predict_tasks (event row + heads)", [""], "predict_tasks"),
    ("recommend_ids (the evaluator's ranking)", [""], "recommend_ids"),
    ("  user context", [""], "_context"),
    ("  pool (compiled retrieval + rows)", ["_retrieval"], "pool"),
    ("  heads score the pool (compiled)", ["module:"], "score_rows"),
    ("  head weights (River -> numpy)", ["_heads"], "scoring_arrays"),
    ("learn_one", [""], "learn_one"),
    ("  heads learn (River + pairwise)", [""], "_learn_heads"),
    ("    River heads (like, rating, funnel)", ["_heads"], "learn_labels"),
    ("    River heads (like, rating, funnel)", ["_heads"], "learn_rating"),
    ("    relevance pairs (compiled)", ["_heads"], "learn_relevance_pool"),
    ("  user and item state", [""], "_learn_state"),
    ("    item neighbours", ["_neighbours"], "learn"),
    ("    MF (BPR step)", ["_mf"], "learn"),
    ("    popular now", ["_popular"], "learn"),
    ("    user side", ["_users"], "learn"),
    ("catalog records", [""], "add_item"),
    ("profile records", [""], "add_profile"),
]


def instrument(model: object) -> tuple[Counter, Counter]:
    """Wrap each stage's method on its owners; returns (nanoseconds, calls) by label."""
    spent: Counter = Counter()
    calls: Counter = Counter()
    module = sys.modules[type(model).__module__]
    for label, owners, method in STAGES:
        for owner_name in owners:
            if owner_name == "module:":
                owner = module
            else:
                owner = getattr(model, owner_name, None) if owner_name else model
            if owner is not None and hasattr(owner, method):
                setattr(owner, method, _timed(getattr(owner, method), label, spent, calls))
    return spent, calls


def _timed(original, label: str, spent: Counter, calls: Counter):  # noqa: ANN001, ANN202
    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter_ns()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter_ns() - started
            calls[label] += 1

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--limit", type=int, default=20000, help="events (0: all)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.events[: args.limit] if args.limit else dataset.events
    model = build_model(args.model)
    spent, calls = instrument(model)
    started = time.perf_counter()
    result = prequential(model, events, catalog=dataset.items, profiles=dataset.profiles)
    elapsed = time.perf_counter() - started
    n = len(events)
    print(("command: python bench/stage_costs.py " + shlex.join(sys.argv[1:])).rstrip())
    print(f"dataset: {dataset.name}, {n:,} events, model {args.model}, HR@10 {result.hit_rate:.4f}")
    print(f"{'stage':40s} {'us/event':>9s} {'calls/event':>12s}")
    for label in dict.fromkeys(label for label, _, _ in STAGES):
        if calls[label]:
            print(f"{label:40s} {spent[label] / n / 1000:9.1f} {calls[label] / n:12.2f}")
    print(f"{'total (whole loop, evaluator included)':40s} {elapsed / n * 1e6:9.1f}")
    print(f"events/s: {n / elapsed:,.0f}")


if __name__ == "__main__":
    main()
