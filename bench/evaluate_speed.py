"""Speed of ``streamrec evaluate``'s loop against River's BiasedMF ranking loop.

Run: ``python bench/evaluate_speed.py [--dataset ml-100k] [--limit N] [--river-events 5000]``
(``--river-events 100000`` times River over the whole of MovieLens-100K: about 3 minutes more.)

Three timings on the same events, in one run:

1. ``prequential()`` with the default model (as ``streamrec evaluate`` runs it,
   catalog and profiles included), over all events;
2. the same loop with a model that does nothing (a fixed list, constant task
   predictions): the evaluator's own cost per event;
3. River's ``reco.BiasedMF`` as the anchor was measured: per event,
   ``rank(user, items the user has not seen)`` then ``learn_one``. It runs at
   a few hundred events per second, so it is timed on the first
   ``--river-events`` events only, and the default model is timed on those
   same events too for the ratio. River slows down as the catalog grows (it
   scores every known item in Python), so its rate on a prefix flatters it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.datasets import load_dataset  # noqa: E402
from stream.evaluation import prequential  # noqa: E402
from stream.events import Event  # noqa: E402
from stream.model import RecommendedItem, Recommender  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402


class ConstantModel(Recommender):
    """Does nothing: the same list for everyone, constant task predictions."""

    name = "constant"

    def __init__(self, k: int = 10) -> None:
        self.k = k
        self._list = [RecommendedItem(f"const-{n}", 1.0 - n / 100) for n in range(k)]

    def learn_one(self, event: Event) -> None:
        pass

    def recommend(
        self, user_ids: Sequence[str], k: int, *, with_reasons: bool = True
    ) -> list[list[RecommendedItem]]:
        return [self._list[:k] for _ in user_ids]

    def predict_tasks(self, event: Event) -> dict[str, float]:
        return {"click": 0.5, "add_to_cart": 0.2, "purchase": 0.1, "like": 0.5, "rating": 3.5}

    def forget_user(self, user_id: str) -> bool:
        return False

    @property
    def n_users(self) -> int:
        return 0

    @property
    def n_items(self) -> int:
        return 0


def river_loop(events: Sequence[Event]) -> float:
    """Seconds for River's BiasedMF to rank-then-learn ``events`` (docs-example settings)."""
    from river import optim, reco

    model = reco.BiasedMF(
        n_factors=10,
        bias_optimizer=optim.SGD(0.025),
        latent_optimizer=optim.SGD(0.025),
        latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=71),
    )
    known_items: set[str] = set()
    seen: dict[str, set[str]] = {}
    started = time.perf_counter()
    for event in events:
        user_seen = seen.setdefault(event.user_id, set())
        if user_seen:  # a known user: rank the known items they have not seen
            model.rank(event.user_id, known_items - user_seen)
        y = event.value if event.value is not None else 1.0
        model.learn_one(event.user_id, event.item_id, y)
        known_items.add(str(event.item_id))
        user_seen.add(str(event.item_id))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--river-events", type=int, default=5000)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model to time (registry name)")
    args = parser.parse_args()
    model_name = args.model
    dataset = load_dataset(args.dataset)
    events = dataset.events[: args.limit] if args.limit else dataset.events
    head = events[: args.river_events]
    side = {"catalog": dataset.items, "profiles": dataset.profiles}

    full = prequential(build_model(model_name), events, **side)
    trivial = prequential(ConstantModel(), events, **side)
    prefix = prequential(build_model(model_name), head, **side)
    river_rate = len(head) / river_loop(head)

    print(("command: python bench/evaluate_speed.py " + shlex.join(sys.argv[1:])).rstrip())
    print(f"dataset: {dataset.name}, {len(events):,} events")
    print(
        f"evaluate loop, {model_name} model, all {full.events:,} events: "
        f"{full.events_per_second:,.0f} events/s (HR@10 {full.hit_rate:.4f})"
    )
    print(
        f"evaluator alone (constant model), all {trivial.events:,} events: "
        f"{trivial.events_per_second:,.0f} events/s = "
        f"{1e6 / trivial.events_per_second:.1f} us per event"
    )
    print(
        f"first {len(head):,} events: {model_name} evaluate loop "
        f"{prefix.events_per_second:,.0f} events/s; River BiasedMF learn_one + rank() "
        f"{river_rate:,.0f} events/s; ratio {prefix.events_per_second / river_rate:.1f}x"
    )
    if len(head) < len(events):
        print(
            f"(River on the first {len(head):,} events only: it ranks every known item in "
            "Python, so it slows as the catalog grows; over the whole stream it is slower, "
            "see --river-events)"
        )


if __name__ == "__main__":
    main()
