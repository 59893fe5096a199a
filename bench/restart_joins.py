"""Kill-restart a worker many times on Apache Kafka; count how each restart joined its group.

Run: ``python bench/restart_joins.py [--restarts 60] [--every 3000] [--seed 7]``

One ``streamrec run`` worker (at-least-once, checkpoints every second)
consumes MovieLens-100K ratings, replayed as often as the restarts need. It
is SIGKILLed after about ``--every`` events, then started again at once, as a
supervisor would. Each restart must wait out the dead member's session
(10 s) before the group hands it the partition.

From the workers' logs it counts, per start:

- **empty first assignments**: the first ``assigned`` line names no
  partition (the kafka-python metadata race of ``consumers/group_join.py``);
- **stranded joins repaired**: ``rejoin_if_stranded`` found a finished join
  nobody collected, and rejoined;
- **seconds to the partition**: from "consuming" to the first ``assigned``
  that names it.

Exits 1 if any start did not get the partition (the kill loop then fails
waiting for progress, as the fault test does).
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumers.brokers import ApacheKafka  # noqa: E402
from tests.integration.faults import FaultRun, kill_repeatedly, numbered_events  # noqa: E402
from tests.integration.service_process import wait_until  # noqa: E402

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _time(line: str) -> float | None:
    match = _STAMP.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def read_start(log: Path) -> dict:
    """What one worker start's log says about its join."""
    consuming = first_assigned = got_partition = None
    repaired = 0
    for line in log.read_text(errors="replace").splitlines():
        if "consumers.app: consuming " in line and consuming is None:
            consuming = _time(line)
        elif "consumers.app: assigned " in line:
            if first_assigned is None:
                first_assigned = line.split("assigned ", 1)[1].strip()
            if got_partition is None and "assigned nothing" not in line:
                got_partition = _time(line)
        elif "left a finished group join unapplied" in line:
            repaired += 1
    waited = got_partition - consuming if consuming and got_partition else None
    return {"empty_first": first_assigned == "nothing", "repaired": repaired, "waited": waited}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=60, help="kills, each followed by a start")
    parser.add_argument("--every", type=int, default=3000, help="events between kills, about")
    parser.add_argument("--seed", type=int, default=7, help="seed of the kill points")
    args = parser.parse_args()
    command = "python bench/restart_joins.py " + shlex.join(sys.argv[1:])

    ok, reason = ApacheKafka.available()
    if not ok:
        print(f"needs Apache Kafka (Java and the Maven jars): {reason}", file=sys.stderr)
        return 2
    events = numbered_events()
    # A start consumes up to 1.5 x --every new events, replays aside; keep a spare replay.
    copies = math.ceil(args.restarts * args.every * 1.5 / len(events)) + 1
    work = Path(tempfile.mkdtemp(prefix="restart-joins-"))
    started = time.monotonic()
    failed = None
    with ApacheKafka(nodes=1) as kafka:
        run = FaultRun.create(kafka.bootstrap_servers, work, "rj", "at-least-once", events)
        for _ in range(copies):
            run.produce(events)
        print(f"{copies * len(events):,} events produced; {args.restarts} kill-restarts ...")
        try:
            last, _ = kill_repeatedly(
                lambda: run.worker("w1"), kills=args.restarts, every=args.every, seed=args.seed
            )
            try:  # the last start, too, must get the partition
                wait_until(lambda: last.consumed() > 0, 180, "progress", last.service)
            finally:
                last.__exit__(None, None, None)
        except AssertionError as exc:
            failed = str(exc).splitlines()[0]
    starts = [read_start(log) for log in sorted(work.glob("streamrec-*.log"))]
    waits = sorted(s["waited"] for s in starts if s["waited"] is not None)
    print(f"\n{command}  ({time.monotonic() - started:.0f} s)")
    print(f"worker starts                          {len(starts)}")
    print(f"empty first assignments                {sum(s['empty_first'] for s in starts)}")
    print(f"stranded joins repaired                {sum(s['repaired'] for s in starts)}")
    print(f"starts that got the partition          {len(waits)}")
    if waits:
        print(
            f"seconds to the partition: median {statistics.median(waits):.1f}, max {waits[-1]:.1f}"
        )
    print(f"logs in {work}")
    if failed or len(waits) < len(starts):
        print(f"FAILED: {failed or 'a start never got the partition'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
