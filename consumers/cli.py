"""The ``streamrec`` command line: run, produce, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from consumers.config import (
    add_settings_arguments,
    settings_from_args,
    unknown_environment,
)
from consumers.errors import ConfigError, ConsumersError
from stream.errors import StreamError

log = logging.getLogger("streamrec")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kafka-python logs every reconnect attempt at WARNING/ERROR; our back-off
    # messages say the same once per try.
    logging.getLogger("kafka").setLevel(
        logging.CRITICAL if level.upper() != "DEBUG" else logging.DEBUG
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from consumers.app import RecommenderService
    from stream.hybrid import HybridRecommender

    settings = settings_from_args(args)
    _setup_logging(settings.log_level)
    if settings.processing_guarantee == "exactly-once":
        # Refuse rather than silently run at-least-once under the wrong name.
        raise ConfigError(
            "--processing-guarantee exactly-once is not available yet; "
            "use at-least-once (the default)"
        )
    for name in unknown_environment():
        log.warning("ignoring unknown environment variable %s (a typo?)", name)
    model = HybridRecommender()
    log.info("starting streamrec: model %s, settings %s", model.version, settings.describe())
    service = RecommenderService(settings, model)
    service.install_signal_handlers()
    return service.run()


def _cmd_produce(args: argparse.Namespace) -> int:
    from consumers.produce import make_replay_producer, produce_dataset
    from stream.datasets import load_dataset

    _setup_logging(args.log_level)
    dataset = load_dataset(args.dataset, progress=lambda text: log.info("%s", text))
    producer = make_replay_producer(args.bootstrap_servers)
    log.info(
        "replaying %d events of %s into %s%s",
        len(dataset.events),
        dataset.name,
        args.input_topic,
        f" at {args.rate:g} events/s" if args.rate else "",
    )
    stats = produce_dataset(
        producer,
        dataset,
        events_topic=args.input_topic,
        catalog_topic=None if args.no_catalog else args.catalog_topic,
        profile_topic=None if args.no_catalog else args.profile_topic,
        rate=args.rate,
        limit=args.limit,
        progress=lambda s: log.info("%d events sent (%.0f/s)", s.events, s.events_per_second),
    )
    producer.close()
    print(
        f"produced {stats.events} events, {stats.items} items, {stats.profiles} profiles "
        f"in {stats.seconds:.1f}s ({stats.events_per_second:.0f} events/s)"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from consumers.demo import run_demo

    _setup_logging(args.log_level)
    return run_demo(
        rate=args.rate,
        limit=args.limit,
        keep_running=args.keep_running,
        k=args.k,
        metrics_port=args.metrics_port,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamrec", description="Real-time recommendations learned online from Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the service: consume events, learn, publish lists")
    add_settings_arguments(run)
    run.set_defaults(handler=_cmd_run)

    produce = commands.add_parser("produce", help="replay a dataset into the events topic")
    produce.add_argument("--dataset", default="ml-100k", help="ml-100k, synthetic or a PATH")
    produce.add_argument(
        "--rate", type=float, default=None, help="events per second (default: as fast as possible)"
    )
    produce.add_argument("--limit", type=int, default=None, help="stop after this many events")
    produce.add_argument(
        "--no-catalog", action="store_true", help="do not write items and profiles"
    )
    add_settings_arguments(
        produce,
        only={"bootstrap_servers", "input_topic", "catalog_topic", "profile_topic", "log_level"},
    )
    produce.set_defaults(handler=_cmd_produce)

    demo = commands.add_parser(
        "demo", help="embedded broker + MovieLens-100K replayed live + the service, with progress"
    )
    demo.add_argument("--rate", type=float, default=1500.0, help="replay pace in events per second")
    demo.add_argument("--limit", type=int, default=None, help="replay only this many events")
    demo.add_argument("--k", type=int, default=10, help="items per list")
    demo.add_argument(
        "--metrics-port", type=int, default=9108, help="port of /metrics (0: any free port)"
    )
    demo.add_argument(
        "--keep-running", action="store_true", help="keep serving after the replay ends"
    )
    demo.add_argument("--log-level", default="WARNING", help="logging level")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except (ConsumersError, StreamError) as exc:
        print(f"streamrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
