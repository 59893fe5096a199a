"""Do pretrained title embeddings help the default model? Prequential ML-100K, with and without.

Run (needs the optional extra for the first encoding only; later runs read the cache)::

    python bench/text_embeddings.py [--dims 32] [--weights 0.5,1,2] [--seeds 0] [--limit N]

1. Loads ML-100K and encodes every item title with all-MiniLM-L6-v2
   (:mod:`stream.text_embeddings`; cached under ``~/.cache/streamrec/text-embeddings``),
   reduced to ``--dims`` dimensions by a PCA fitted on the catalog's titles
   only (never on interactions).
2. Runs the default model (``build_model("multitask")``) through
   ``prequential()`` exactly as ``streamrec evaluate --dataset ml-100k`` does
   (catalog and profiles included), once without embeddings and once per
   ``--weights`` value with the text block switched on at that weight.
   The baseline runs twice (unless ``--no-rerun``): the model is seeded, so
   the two must agree exactly, which is the run-to-run noise check.
3. Prints HR@10, NDCG@10, HR@10 on cold items (fewer than 5 earlier
   interactions) and cold-item coverage, and for each variant the paired
   difference in HR@10 (overall and on cold items) against the baseline with
   its standard error over ranked events: the runs are deterministic, so
   the uncertainty that matters is which events happened to be sampled.

Runs are sequential (one process, one core's worth of numpy at a time).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation import prequential  # noqa: E402
from stream.evaluation.slices import COLD_INTERACTIONS  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402
from stream.text_embeddings import catalog_embeddings, with_text_embeddings  # noqa: E402

K = 10


def cold_flags(events: list, positions: list[int]) -> np.ndarray:
    """Whether each ranked event's item had fewer than COLD_INTERACTIONS earlier events."""
    seen: Counter[str] = Counter()
    flags = []
    ranked = iter(positions)
    nxt = next(ranked, None)
    for n, event in enumerate(events, start=1):
        if n == nxt:
            flags.append(seen[event.item_id] < COLD_INTERACTIONS)
            nxt = next(ranked, None)
        seen[event.item_id] += 1
    return np.array(flags, dtype=bool)


def run_one(label: str, seed: int, dims: int, weight: float, events, catalog, profiles) -> dict:
    model = build_model(DEFAULT_MODEL, seed=seed)
    if weight > 0:
        # The multitask model builds its own ItemContent (text block off);
        # switch the block on before any catalog item reaches it.
        model._content.configure_text(dims, weight)  # type: ignore[attr-defined]
    started = time.perf_counter()
    result = prequential(model, events, k=K, catalog=catalog, profiles=profiles)
    summary = result.summary()
    hits = np.asarray(result.ranks) > 0
    row = {
        "label": label,
        "seed": seed,
        "dims": dims if weight > 0 else 0,
        "text_weight": weight,
        f"hr@{K}": summary[f"hr@{K}"],
        f"ndcg@{K}": summary[f"ndcg@{K}"],
        f"hr@{K}_cold_items": summary[f"hr@{K}_cold_items"],
        "cold_item_coverage": summary["cold_item_coverage"],
        "cold_events": summary["slice_events"]["cold_items"],
        "scored": summary["scored"],
        "events_per_second": summary["events_per_second"],
        "seconds": time.perf_counter() - started,
    }
    print(
        f"  {label:<28} HR@10 {row[f'hr@{K}']:.4f}  NDCG@10 {row[f'ndcg@{K}']:.4f}  "
        f"cold HR@10 {row[f'hr@{K}_cold_items']:.4f}  ({row['events_per_second']:.0f} ev/s)",
        file=sys.stderr,
        flush=True,
    )
    return {"row": row, "hits": hits, "positions": result.positions}


def paired(diff: np.ndarray) -> tuple[float, float]:
    """Mean of a paired per-event difference and its standard error."""
    if diff.size < 2:
        return float("nan"), float("nan")
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--dims", type=int, default=32, help="PCA dims (0: full 384)")
    parser.add_argument("--weights", default="0.5,1,2", help="text_weight values to try")
    parser.add_argument("--seeds", default="0", help="model seeds, comma-separated")
    parser.add_argument("--with-genres", action="store_true", help="embed 'title (genres)'")
    parser.add_argument("--limit", type=int, default=None, help="first N events only")
    parser.add_argument("--no-rerun", action="store_true", help="skip the determinism rerun")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = parser.parse_args(argv)
    command = "python bench/text_embeddings.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )

    dataset = load_dataset(args.dataset)
    events = dataset.events[: args.limit] if args.limit else dataset.events
    started = time.perf_counter()
    embeddings = catalog_embeddings(
        dataset.items, dims=args.dims or None, with_genres=args.with_genres
    )
    dims = args.dims or next(iter(embeddings.values())).shape[0]
    print(
        f"{len(embeddings)} titles embedded ({dims} dims) in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    with_text = with_text_embeddings(dataset.items, embeddings)
    weights = [float(w) for w in args.weights.split(",") if w.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    runs: list[dict[str, Any]] = []
    for seed in seeds:
        print(f"seed {seed}:", file=sys.stderr)
        base = run_one("off", seed, dims, 0.0, events, dataset.items, dataset.profiles)
        if not args.no_rerun:
            # The same model again, given the catalog *with* embeddings but the block
            # off: must match exactly (determinism, and the feature is inert when off).
            again = run_one(
                "off (again, emb. in catalog)", seed, dims, 0.0, events, with_text, dataset.profiles
            )
            base["row"]["identical_rerun"] = bool(
                np.array_equal(base["hits"], again["hits"])
                and base["row"][f"hr@{K}"] == again["row"][f"hr@{K}"]
                and base["row"][f"ndcg@{K}"] == again["row"][f"ndcg@{K}"]
            )
        cold = cold_flags(events, base["positions"])
        assert int(cold.sum()) == base["row"]["cold_events"], "cold slice mismatch"
        runs.append(base)
        for weight in weights:
            variant = run_one(
                f"text_weight={weight:g}", seed, dims, weight, events, with_text, dataset.profiles
            )
            diff = variant["hits"].astype(float) - base["hits"].astype(float)
            variant["row"]["d_hr@10"], variant["row"]["se_hr@10"] = paired(diff)
            variant["row"]["d_hr@10_cold"], variant["row"]["se_hr@10_cold"] = paired(diff[cold])
            runs.append(variant)

    rows = [run["row"] for run in runs]
    print(f"\n{command}\n")
    header = (
        "| seed | text_weight | dims | HR@10 | NDCG@10 | cold HR@10 | cold cov. "
        "| ΔHR@10 (±SE) | Δcold HR@10 (±SE) | ev/s |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        delta = (
            f"{row['d_hr@10']:+.4f} ± {row['se_hr@10']:.4f}"
            if "d_hr@10" in row
            else ("(baseline; rerun identical)" if row.get("identical_rerun") else "(baseline)")
        )
        delta_cold = (
            f"{row['d_hr@10_cold']:+.4f} ± {row['se_hr@10_cold']:.4f}" if "d_hr@10" in row else ""
        )
        print(
            f"| {row['seed']} | {row['text_weight']:g} | {row['dims']} | {row['hr@10']:.4f} "
            f"| {row['ndcg@10']:.4f} | {row['hr@10_cold_items']:.4f} "
            f"| {row['cold_item_coverage']:.4f} | {delta} | {delta_cold} "
            f"| {row['events_per_second']:.0f} |"
        )
    cold_n = rows[0]["cold_events"]
    print(f"\nranked events: {rows[0]['scored']}, of which on cold items: {cold_n}")
    if args.json is not None:
        args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
