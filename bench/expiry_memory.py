"""Resident memory on an endless stream of ever-new users: does it level off?

Streams synthetic events, generated lazily (nothing is held but the model),
through the default model's ``learn_one``, ranking a sample of active users
every ``--rank-every`` events as the service would. Users arrive all the
time, act for a short while (a session of a few events) and never come back;
items are released at a steady pace and fade out of fashion. Every
``--report-every`` events it prints the process's resident memory (VmRSS)
and what the model holds (``state_size()``).

With expiry (the model's defaults: users idle for 90 days, items for 180),
memory levels off once the stream is older than the TTLs; ``--no-expiry``
is the contrast, where it keeps growing.

    python bench/expiry_memory.py                          # 5,000,000 events, ~15 min
    python bench/expiry_memory.py --events 1000000 --no-expiry
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stream.events import Event  # noqa: E402
from stream.registry import DEFAULT_MODEL, build_model  # noqa: E402

_DAY = 86_400.0


def rss_mib() -> float:
    """Resident set size of this process in MiB (``VmRSS`` of ``/proc/self/status``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def ever_new_users(
    n_events: int,
    *,
    seconds_per_event: float,
    active_users: int,
    events_per_user: int,
    live_items: int,
    items_per_day: float,
    seed: int,
) -> Iterator[tuple[Event, list[str]]]:
    """Events in time order, and the ids of the users active at that moment.

    ``active_users`` users are in a session at any time; a user makes
    ``events_per_user`` events on average and is then replaced by a brand-new
    one. Items: the ``live_items`` newest of a catalog that grows by
    ``items_per_day``, chosen with a Zipf-like preference for the newest.
    """
    rng = random.Random(seed)
    next_user = 0
    active: list[list] = []  # [user id, events left]
    for _ in range(active_users):
        active.append([f"v{next_user}", 1 + int(rng.expovariate(1 / events_per_user))])
        next_user += 1
    kinds = ("view", "view", "click", "click", "add_to_cart", "purchase")
    for n in range(n_events):
        t = n * seconds_per_event
        slot = rng.randrange(active_users)
        user = active[slot]
        newest = int(t / _DAY * items_per_day) + live_items
        age = min(int(rng.paretovariate(1.1)) - 1, live_items - 1)
        item = f"i{newest - 1 - age}"
        yield Event(user[0], item, rng.choice(kinds), t), [u[0] for u in active[:10]]
        user[1] -= 1
        if user[1] <= 0:
            active[slot] = [f"v{next_user}", 1 + int(rng.expovariate(1 / events_per_user))]
            next_user += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--report-every", type=int, default=250_000)
    parser.add_argument("--rank-every", type=int, default=1000, help="rank 10 active users")
    parser.add_argument("--seconds-per-event", type=float, default=60.0, help="event-time step")
    parser.add_argument("--active-users", type=int, default=50)
    parser.add_argument("--events-per-user", type=float, default=8.0)
    parser.add_argument("--live-items", type=int, default=2000)
    parser.add_argument("--items-per-day", type=float, default=10.0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--no-expiry", action="store_true", help="user and item TTLs off")
    # The stream's users vanish after a few events, so a TTL shorter than the
    # model's default (a year) shows the levelling off within the run.
    parser.add_argument("--user-ttl-days", type=float, default=90.0)
    parser.add_argument("--item-ttl-days", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print("command:", shlex.join(["python", "bench/expiry_memory.py", *sys.argv[1:]]))
    params: dict[str, float | None] = {
        "user_ttl_seconds": args.user_ttl_days * 86400.0,
        "item_ttl_seconds": args.item_ttl_days * 86400.0,
    }
    if args.no_expiry:
        params = {"user_ttl_seconds": None, "item_ttl_seconds": None}
    model = build_model(args.model, **params)
    print(
        f"model: {model.version}; user TTL {getattr(model, 'user_ttl_seconds', None)} s, "
        f"item TTL {getattr(model, 'item_ttl_seconds', None)} s; "
        f"stream: {args.events:,} events, {args.seconds_per_event:g} s apart in event time "
        f"({args.events * args.seconds_per_event / _DAY:,.0f} days)"
    )
    columns = ("users", "items", "user_rows", "item_rows", "cooccurrence_pairs",
               "neighbour_overlaps", "history_seen_items")  # fmt: skip
    header = f"{'events':>10} {'day':>6} {'ev/s':>7} {'RSS MiB':>8} " + " ".join(
        f"{c:>18}" for c in columns
    )
    print(header)
    started = time.perf_counter()
    users_seen = 0
    last_user = None
    stream = ever_new_users(
        args.events,
        seconds_per_event=args.seconds_per_event,
        active_users=args.active_users,
        events_per_user=args.events_per_user,
        live_items=args.live_items,
        items_per_day=args.items_per_day,
        seed=args.seed,
    )
    for n, (event, active) in enumerate(stream, start=1):
        model.learn_one(event)
        if event.user_id != last_user:
            last_user = event.user_id
        if n % args.rank_every == 0:
            model.recommend(active, 10)
        if n % args.report_every == 0 or n == args.events:
            size = model.state_size()  # type: ignore[attr-defined]
            users_seen = int(event.user_id[1:]) + 1
            elapsed = time.perf_counter() - started
            print(
                f"{n:>10,} {event.timestamp / _DAY:>6.0f} {n / elapsed:>7,.0f} {rss_mib():>8.0f} "
                + " ".join(f"{size.get(c, 0):>18,}" for c in columns),
                flush=True,
            )
    print(f"about {users_seen:,} distinct users streamed; {time.perf_counter() - started:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
