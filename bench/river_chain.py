"""The funnel heads against River's own multi-output chain, on the same rows and labels.

Run: ``python bench/river_chain.py [--dataset synthetic] [--limit N]``

The multitask model's funnel heads are an ESMM-style chain written with River
logistic regressions: ``p(click)``, then ``p(add_to_cart | click)`` learned
only on clicked impressions, then ``p(purchase | add_to_cart)`` learned only
on carted ones, multiplied down the funnel. River ships a generic chain,
``multioutput.ClassifierChain``: every link learns on every impression, with
the earlier links' predicted probabilities as extra inputs, and predicts each
task's marginal probability directly.

This script runs the default model prequentially (as ``streamrec evaluate``
does) and, each time the model's heads learn an impression's funnel labels,
first asks three predictors about that same feature row and then lets them
learn it:

- the model's own heads (``task_mode="chain"``, the default),
- a second set of heads in ``task_mode="single"`` (independent heads),
- River's ``ClassifierChain`` over logistic regressions with the heads'
  settings (SGD step ``head_learning_rate``, no L2), order click, add_to_cart,
  purchase.

All three see identical rows and labels in identical order, predicting
before learning, so their AUCs compare directly. (The figures differ a little
from ``streamrec evaluate``'s, which scores each impression when the event
arrives rather than when its outcome is known.)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from river import linear_model, multioutput, optim  # noqa: E402

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation import prequential  # noqa: E402
from stream.evaluation.metrics import roc_auc  # noqa: E402
from stream.heads import TaskHeads  # noqa: E402
from stream.multitask import FEATURE_NAMES, MultiTaskRecommender  # noqa: E402

FUNNEL_TASKS = ("click", "add_to_cart", "purchase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.events[: args.limit] if args.limit else dataset.events

    model = MultiTaskRecommender()
    lr = model.head_learning_rate
    single = TaskHeads(FEATURE_NAMES, mode="single", learning_rate=lr)
    river_chain = multioutput.ClassifierChain(
        linear_model.LogisticRegression(optimizer=optim.SGD(lr), intercept_lr=lr),
        order=list(FUNNEL_TASKS),
    )
    seen: dict[str, dict[str, list]] = {
        name: {task: [] for task in FUNNEL_TASKS} for name in ("esmm", "single", "river")
    }
    labels_seen: dict[str, list[int]] = {task: [] for task in FUNNEL_TASKS}
    spent = {"esmm": 0.0, "single": 0.0, "river": 0.0}
    heads = model._heads
    learn_labels = heads.learn_labels

    def compared(row, labels):  # noqa: ANN001, ANN202
        if "click" in labels:
            x = dict(zip(FEATURE_NAMES, row.tolist(), strict=True))
            started = time.perf_counter()
            ours = heads.predict_one(row)
            spent["esmm"] += time.perf_counter() - started
            started = time.perf_counter()
            theirs_single = single.predict_one(row)
            single.learn_labels(row, labels)
            spent["single"] += time.perf_counter() - started
            started = time.perf_counter()
            river = river_chain.predict_proba_one(x)
            river_chain.learn_one(x, {task: bool(labels[task]) for task in FUNNEL_TASKS})
            spent["river"] += time.perf_counter() - started
            for task in FUNNEL_TASKS:
                labels_seen[task].append(labels[task])
                seen["esmm"][task].append(ours.get(task, 0.5))
                seen["single"][task].append(theirs_single.get(task, 0.5))
                seen["river"][task].append(river[task].get(True, 0.5) if river[task] else 0.5)
        started = time.perf_counter()
        learn_labels(row, labels)
        spent["esmm"] += time.perf_counter() - started

    heads.learn_labels = compared
    prequential(model, events, catalog=dataset.items, profiles=dataset.profiles)

    print(("command: python bench/river_chain.py " + shlex.join(sys.argv[1:])).rstrip())
    n = len(labels_seen["click"])
    print(f"dataset: {dataset.name}, {len(events):,} events, {n:,} impressions with an outcome")
    header = " ".join(f"{task:>11s}" for task in FUNNEL_TASKS)
    print(f"{'funnel heads':44s} {header}  us/impr.")
    rows = [
        ("ESMM chain (multitask default, task_mode=chain)", "esmm"),
        ("independent heads (task_mode=single)", "single"),
        ("River multioutput.ClassifierChain", "river"),
    ]
    for label, key in rows:
        aucs = [roc_auc(labels_seen[task], seen[key][task]) for task in FUNNEL_TASKS]
        cells = " ".join(f"{a:11.4f}" if a is not None else f"{'-':>11s}" for a in aucs)
        print(f"{label:44s} {cells}  {spent[key] / max(n, 1) * 1e6:8.1f}")
    positives = {task: sum(labels_seen[task]) for task in FUNNEL_TASKS}
    print("positives: " + ", ".join(f"{task} {count:,}" for task, count in positives.items()))


if __name__ == "__main__":
    main()
