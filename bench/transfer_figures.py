"""The figures of docs/transfer.md: cold start, cross-domain, exploration, expiry's cost.

Each row is one prequential pass (exactly what ``streamrec evaluate`` runs,
printed as that command) of the default model with one setting changed:

- ``cold``: feature transfer for cold items on and off, on MovieLens-100K and
  the synthetic stream: HR@10 on events whose item had fewer than 5 earlier
  interactions (``hr@10_cold_items``);
- ``users``: the segment prior for new users on and off: HR@10 on events of
  users with fewer than 5 earlier events (``hr@10_cold_users``);
- ``domains``: one history across domains, or one per (user, domain), on the
  two-domain synthetic stream and MovieLens-100K split by genre: HR@10 on each
  user's first 5 ranked events in a domain they enter with history elsewhere
  (``hr@10_new_in_domain``);
- ``exploration``: the share of slots given to low-evidence items, and what it
  costs in HR@10 and buys in coverage of cold and new items;
- ``expiry``: what the user TTL costs on MovieLens-100K (users who come back
  after a long break start over).

    python bench/transfer_figures.py                 # every section (~25 min on one core)
    python bench/transfer_figures.py --only domains
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation.run import evaluate_run  # noqa: E402
from stream.registry import DEFAULT_MODEL, model_class  # noqa: E402

_DAY = 86_400.0

SECTIONS: dict[str, list[tuple[str, dict]]] = {
    "cold": [
        ("ml-100k", {}),
        ("ml-100k", {"cold_start_transfer": False}),
        ("synthetic", {}),
        ("synthetic", {"cold_start_transfer": False}),
    ],
    "users": [
        ("ml-100k", {}),
        ("ml-100k", {"segment_prior": False}),
        ("synthetic", {}),
        ("synthetic", {"segment_prior": False}),
    ],
    "domains": [
        ("synthetic-2domain", {}),
        ("synthetic-2domain", {"domain_transfer": False}),
        ("ml-100k-domains", {}),
        ("ml-100k-domains", {"domain_transfer": False}),
    ],
    "exploration": [
        (dataset, {"exploration": share} if share else {})
        for dataset in ("synthetic", "ml-100k")
        for share in (0.0, 0.1, 0.2, 0.3)
    ],
    "expiry": [
        ("ml-100k", {"user_ttl_seconds": None, "item_ttl_seconds": None}),
        ("ml-100k", {"user_ttl_seconds": 30 * _DAY}),
        ("ml-100k", {}),
    ],
}

COLUMNS = (
    "hr@10",
    "hr@10_cold_items",
    "hr@10_cold_users",
    "hr@10_new_in_domain",
    "cold_item_coverage",
    "new_item_coverage",
)


def command(dataset: str, params: dict) -> str:
    words = ["streamrec", "evaluate", "--dataset", dataset]
    for key, value in params.items():
        words += ["--param", f"{key}={value!r}"]
    return shlex.join(words)


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    print("command:", shlex.join(["python", "bench/transfer_figures.py", *sys.argv[1:]]))
    cls = model_class(args.model)
    datasets = {}
    done: dict[tuple[str, str], dict] = {}  # a setting in several sections runs once
    for section in args.only or list(SECTIONS):
        print(f"\n## {section}\n")
        print(" | ".join(["events", *COLUMNS, "command"]))
        for dataset, params in SECTIONS[section]:
            if dataset not in datasets:
                datasets[dataset] = load_dataset(dataset)
            started = time.perf_counter()
            key = (dataset, repr(sorted(params.items())))
            if key not in done:
                done[key] = evaluate_run(datasets[dataset], lambda p=params: cls(**p))
            summary = done[key]
            print(
                " | ".join(
                    [
                        str(summary["events"]),
                        *(_fmt(summary.get(c)) for c in COLUMNS),
                        f"`{command(dataset, params)}`",
                    ]
                )
                + f"  ({time.perf_counter() - started:.0f} s; slices {summary['slice_events']})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
