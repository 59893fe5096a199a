"""How the MF candidate source should find a user's nearest items at 200k items.

Run: ``python bench/mf_retrieval.py [--events 300000] [--users 500]``

Trains the default model on the first ``--events`` events of the 200k-item
planted stream (learning only), then, for ``--users`` users who have an MF
vector, compares ways to take the 100 items with the highest MF score
(``user . item + bias``) against an exact scan of every item:

- ``exact scan``: ``items @ vector`` over the catalog plus ``argpartition``;
- ``genre scope`` (the model's choice above ``mf_exact_limit``): the exact
  scan restricted to the items of the user's three most recent genres;
- ``usearch`` (if installed; not a dependency): an HNSW index over the item
  vectors with the bias as an extra coordinate (``metric="ip"``, defaults),
  and what one update of a touched item costs (remove + add), which learning
  would pay for every event's item and its sampled negatives.

Recall@100 is the share of the exact top 100 that a method returns; for the
genre scope it is also given within the scope (what it can see), since the
other sources cover the rest of the catalog.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.datasets import load_dataset  # noqa: E402
from stream.registry import build_model  # noqa: E402

SPEC = "synthetic:users=1000000,items=200000,events=1000000,seed=0"
TOP = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args()
    data = load_dataset(SPEC)
    model = build_model("multitask")
    for item in data.items:
        model.add_item(item)
    for event in data.events[: args.events]:
        model.learn_one(event)
    catalog, mf = model._catalog, model._mf
    n_items = catalog.capacity
    vectors, biases = mf.tables(n_items)
    vectors, biases = vectors[:n_items], biases[:n_items]
    rng = np.random.default_rng(0)
    users = rng.choice(len(model._users.ids), size=args.users, replace=False)
    rows = [row for _, row in model._users.ids.items()]
    users = [rows[u] for u in users]

    exact_s, scoped_s, recall_scoped, recall_in_scope = [], [], [], []
    exact_tops = []
    for user in users:
        vector = mf.user_vector(user)
        started = time.perf_counter()
        scores = vectors @ vector + biases
        top = np.argpartition(-scores, TOP)[:TOP]
        exact_s.append(time.perf_counter() - started)
        exact_tops.append(set(top.tolist()))
        ctx = model._context("u", user, model._clock)
        genres = np.unique(ctx.recent_genres)[:3]
        started = time.perf_counter()
        scope = np.concatenate([catalog.genre_members(int(g)) for g in genres] or [top[:0]])
        local = scope[np.argsort(-(vectors[scope] @ vector + biases[scope]))[:TOP]]
        scoped_s.append(time.perf_counter() - started)
        recall_scoped.append(len(set(local.tolist()) & exact_tops[-1]) / TOP)
        in_scope = scope[np.argsort(-scores[scope])[:TOP]]
        recall_in_scope.append(len(set(local.tolist()) & set(in_scope.tolist())) / TOP)

    print(("command: python bench/mf_retrieval.py " + shlex.join(sys.argv[1:])).rstrip())
    print(f"{SPEC}, first {args.events:,} events learned; {len(users)} users; top {TOP}")
    print(f"{'method':34s} {'recall@100':>10s} {'us/query':>9s} {'update us':>10s}")
    print(f"{'exact scan (numpy)':34s} {1.0:10.3f} {np.median(exact_s) * 1e6:9.0f} {0:10.0f}")
    print(
        f"{'genre scope (exact in scope)':34s} {np.mean(recall_scoped):10.3f} "
        f"{np.median(scoped_s) * 1e6:9.0f} {0:10.0f}   (within the scope: "
        f"{np.mean(recall_in_scope):.3f})"
    )
    try:
        from usearch.index import Index
    except ImportError:
        print("usearch: not installed (pip install usearch to compare)")
        return
    table = np.hstack([vectors, biases[:, None]]).astype(np.float32)
    index = Index(ndim=table.shape[1], metric="ip")
    started = time.perf_counter()
    index.add(np.arange(n_items), table)
    build = time.perf_counter() - started
    found, query_s = [], []
    for user, exact in zip(users, exact_tops, strict=True):
        query = np.append(mf.user_vector(user), 1.0).astype(np.float32)
        started = time.perf_counter()
        matches = index.search(query, TOP)
        query_s.append(time.perf_counter() - started)
        found.append(len(set(matches.keys.tolist()) & exact) / TOP)
    update_s = []
    for item in rng.choice(n_items, size=200, replace=False).tolist():
        started = time.perf_counter()
        index.remove(item)
        index.add(item, table[item])
        update_s.append(time.perf_counter() - started)
    print(
        f"{'usearch HNSW (ip, defaults)':34s} {np.mean(found):10.3f} "
        f"{np.median(query_s) * 1e6:9.0f} {np.median(update_s) * 1e6:10.0f}"
        f"   (build {build:.1f} s)"
    )


if __name__ == "__main__":
    main()
