"""Models against catalog size: events/s, memory and HR@10 on planted streams of 2k to 200k items.

Run: ``python bench/catalog_scale.py [--quick] [--sizes 2000,20000,200000] [--with-1m]
[--events N] [--limit N] [--models evaluator,default,itemcf-recency,...]`` (the default
models: evaluator, default, itemcf-recency, genre-popularity, popularity, oracle)

For each catalog size ``I`` the stream is ``synthetic:users=5I,items=I,events=N,seed=S``
(:func:`stream.datasets.load_dataset`; ``I // 100`` genres, the genre sampler
above 1,000 items; ``N`` = ``--events``, 1,000,000 by default, 100,000 with
``--quick``, which also leaves out 200k). At 200k items that is the issue's
stream: 1,000,000 users, 2,000 genres, 1,000,000 events. ``--with-1m`` adds a
catalog of 1,000,000 items (5,000,000 users).

Each model runs in a subprocess of its own, which generates the stream
(deterministic per seed) and then runs ``evaluate_one`` of
``stream.evaluation.run``, the pass ``streamrec evaluate`` makes, over the
first ``--limit`` events (default all), so HR@10 is the CLI's figure. A row
gives:

- ``events/s``: the prequential loop's rate (ranking, task predictions and
  learning; not the generation);
- ``HR@10``: as ``streamrec evaluate`` computes it (first interactions only,
  seen items excluded);
- ``data MiB``: resident memory once the stream is generated (the dataset's
  own: events, catalog, profiles, and the interpreter; for the oracle, also
  the generator's truth);
- ``model MiB``: peak resident memory while the model is built and evaluated,
  less ``data MiB``
  (the peak is reset after generation through ``/proc/self/clear_refs``; where
  that is refused, RSS sampled every 50 ms);
- ``peak MiB``: the subprocess's peak resident memory (``ru_maxrss``; after the
  reset, so generation is left out where the reset works).

The ``evaluator`` row is a model that does nothing (a fixed list, from
``bench/evaluate_speed.py``): its ``model MiB`` is what the evaluation loop
itself holds (catalog and profiles in time order, list-quality tables: about
120-180 MiB at 200k items and 1M users), part of every other row's figure.

``default`` is ``registry.DEFAULT_MODEL`` at run time. ``oracle`` is
:class:`~stream.datasets.synthetic.SyntheticOracle`: before each event the
top of the distribution the generator drew that event's session from, less
the user's seen items (it knows the session's genre and the true weights, not
the random draws); no model can expect to beat it. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import hwm_mib, reset_peak, rss_mib  # noqa: E402

from stream.registry import DEFAULT_MODEL  # noqa: E402

DEFAULT_MODELS = (
    "evaluator",
    "default",
    "itemcf-recency",
    "genre-popularity",
    "popularity",
    "oracle",
)
SIZES = (2_000, 20_000, 200_000)
USERS_PER_ITEM = 5
PROGRESS_SECONDS = 15.0


def spec_for(n_items: int, n_events: int, seed: int) -> str:
    return (
        f"synthetic:users={USERS_PER_ITEM * n_items},items={n_items},events={n_events},seed={seed}"
    )


# ----------------------------------------------------------------------------- one model


class _RssSampler(threading.Thread):
    """The highest RSS seen every 50 ms: the fallback where the peak cannot be reset."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mib()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, rss_mib())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, rss_mib())


def run_one(spec: str, model_name: str, limit: int | None) -> dict[str, Any]:
    """Generate the stream, evaluate one model on it as ``streamrec evaluate`` does."""
    from stream.datasets import load_dataset
    from stream.datasets.synthetic import SyntheticOracle
    from stream.evaluation.prequential import PrequentialResult
    from stream.evaluation.run import evaluate_one
    from stream.registry import build_model

    name = DEFAULT_MODEL if model_name == "default" else model_name
    label = f"[{spec.split(',')[1]} {name}]"
    started = time.perf_counter()
    print(f"{label} generating {spec} ...", file=sys.stderr, flush=True)
    data = load_dataset(spec)
    generated = time.perf_counter() - started
    truth, data.truth = data.truth, None
    if name != "oracle":
        truth = None
    events = data.events[:limit] if limit else data.events
    gc.collect()
    data_mib = rss_mib()
    reset = reset_peak()
    sampler = _RssSampler()
    sampler.start()
    # Built after the measure: the model's imports and tables count as the model's.
    if name == "evaluator":
        from evaluate_speed import ConstantModel  # bench/: a model that does nothing

        model: Any = ConstantModel()
    else:
        model = SyntheticOracle(truth) if truth is not None else build_model(name)
    print(
        f"{label} {len(events):,} events ready after {generated:.1f} s, {data_mib:,.0f} MiB",
        file=sys.stderr,
        flush=True,
    )
    last = [time.perf_counter()]

    def progress(position: int, result: PrequentialResult) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            print(
                f"{label} {position:,}/{len(events):,} events, "
                f"{result.events_per_second:,.0f} events/s, HR@10 {result.hit_rate:.4f}",
                file=sys.stderr,
                flush=True,
            )

    summary = evaluate_one(model, data, events, k=10, progress=progress)
    sampled = sampler.stop()
    hwm = hwm_mib() if reset else None
    eval_peak = hwm if hwm is not None else sampled
    return {
        "spec": spec,
        "model": name,
        "events": summary["events"],
        "scored": summary["scored"],
        "hr@10": summary["hr@10"],
        "events_per_second": summary["events_per_second"],
        "generate_seconds": generated,
        "data_mib": data_mib,
        "model_mib": max(0.0, eval_peak - data_mib),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_from": "VmHWM" if hwm is not None else "sampled",
    }


# ----------------------------------------------------------------------------- the table


def _subprocess_row(spec: str, model: str, limit: int | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker-spec", spec, "--worker-model", model]
    if limit:
        command += ["--limit", str(limit)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        return {"spec": spec, "model": model, "error": f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'items':>9} {'users':>9} {'events':>9}  {'model':<18} {'events/s':>9} {'HR@10':>7} "
        f"{'data MiB':>9} {'model MiB':>9} {'peak MiB':>9} {'gen s':>6}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        sizes = dict(part.split("=") for part in row["spec"].split(":", 1)[1].split(","))
        start = f"{int(sizes['items']):>9,} {int(sizes['users']):>9,}"
        if "error" in row:
            lines.append(f"{start} {'':>9}  {row['model']:<18} {row['error']}")
            continue
        lines.append(
            f"{start} {row['events']:>9,}  {row['model']:<18} {row['events_per_second']:>9,.0f} "
            f"{row['hr@10']:>7.4f} {row['data_mib']:>9,.0f} {row['model_mib']:>9,.0f} "
            f"{row['peak_mib']:>9,.0f} {row['generate_seconds']:>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k and 20k items, 100,000 events")
    parser.add_argument("--sizes", default=None, help="catalog sizes, comma-separated")
    parser.add_argument("--with-1m", action="store_true", help="add a 1,000,000-item catalog")
    parser.add_argument("--events", type=int, default=None, help="stream length per size")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N events")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker-spec", help=argparse.SUPPRESS)
    parser.add_argument("--worker-model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_spec:
        print(json.dumps(run_one(args.worker_spec, args.worker_model, args.limit)))
        return
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    else:
        sizes = list(SIZES[:2] if args.quick else SIZES)
    if args.with_1m:
        sizes.append(1_000_000)
    n_events = args.events or (100_000 if args.quick else 1_000_000)
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    rows = []
    for n_items in sizes:
        spec = spec_for(n_items, n_events, args.seed)
        for model in models:
            rows.append(_subprocess_row(spec, model, args.limit))
            print(_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(("command: python bench/catalog_scale.py " + shlex.join(sys.argv[1:])).rstrip())
    print(
        f"default model: {DEFAULT_MODEL}; streams: synthetic:users={USERS_PER_ITEM}*items,"
        f"items=I,events={n_events},seed={args.seed} (items // 100 genres)"
    )
    if args.limit:
        print(f"each model evaluated on the first {args.limit:,} events")
    print(_table(rows))


if __name__ == "__main__":
    main()
