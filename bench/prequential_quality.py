"""Prequential (test-then-learn) quality of the default model on a dataset.

Run: ``python bench/prequential_quality.py [--dataset ml-100k] [--limit N]``

For every event in time order: rank for the user (items already seen
excluded), check whether the event's item is in the top 10, then learn the
event. Prints HR@10, NDCG@10, MRR@10 and the evaluation speed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluate import prequential  # noqa: E402
from stream.registry import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--model", default="hybrid")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.events[: args.limit] if args.limit else dataset.events
    model = build_model(args.model)

    def progress(position: int, result) -> None:  # noqa: ANN001
        if position % 10_000 == 0:
            print(f"  {position:,} events, HR@10 so far {result.hit_rate:.4f}", file=sys.stderr)

    result = prequential(model, events, k=10, progress=progress)
    print("command: python bench/prequential_quality.py " + shlex.join(sys.argv[1:]))
    print(json.dumps({"dataset": dataset.name, "model": model.version, **result.summary()}))


if __name__ == "__main__":
    main()
