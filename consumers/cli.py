"""The ``streamrec`` command line: run, produce, demo, evaluate."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from consumers.config import (
    add_settings_arguments,
    settings_from_args,
    unknown_environment,
)
from consumers.errors import ConsumersError
from stream.errors import StreamError

log = logging.getLogger("streamrec")


#: What --dataset takes.
DATASET_HELP = "ml-100k, synthetic, synthetic:users=N,items=N,events=N or a PATH"


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
    from consumers.checkpoint import CheckpointStore
    from stream import snapshot
    from stream.registry import build_model
    from stream.warm_start import load_pretrained

    settings = settings_from_args(args)
    _setup_logging(settings.log_level)
    for name in unknown_environment():
        log.warning("ignoring unknown environment variable %s (a typo?)", name)
    key = None
    if settings.state_dir or settings.warm_start:
        # Checkpoints and warm starts are pickles: never load one unverified.
        key = snapshot.load_key(settings.snapshot_key_file or None)
    if settings.warm_start:
        assert key is not None
        model, version = load_pretrained(settings.warm_start, key)
        if model.name != settings.model:
            log.warning(
                "--warm-start holds a %s model; it is used instead of --model %s",
                model.name,
                settings.model,
            )
        log.info("warm start from %s (%s)", settings.warm_start, version)
    else:
        model = build_model(settings.model)
        version = model.version
    store = None
    if settings.state_dir:
        assert key is not None
        store = CheckpointStore(settings.state_dir, settings.group_id, key)
    log.info("starting streamrec: model %s, settings %s", version, settings.describe())
    service = RecommenderService(settings, model, checkpoints=store, model_version=version)
    service.install_signal_handlers()
    return service.run()


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from stream import snapshot
    from stream.datasets import load_dataset
    from stream.registry import DEFAULT_MODEL, model_class
    from stream.warm_start import pretrain, write_pretrained

    _setup_logging(args.log_level)
    key = snapshot.load_key(args.snapshot_key_file)  # before minutes of training
    try:
        model = model_class(args.model or DEFAULT_MODEL)(**_model_params(args.param))
    except (ValueError, TypeError) as exc:
        print(f"streamrec pretrain: error: {exc}", file=sys.stderr)
        return 2
    dataset = load_dataset(args.dataset, progress=lambda text: print(text, file=sys.stderr))
    events = dataset.events[: args.limit] if args.limit is not None else dataset.events
    bar = None if args.quiet else _ProgressBar(f"pretrain {model.name}", len(events))
    pretrain(
        model,
        events,
        catalog=dataset.items,
        profiles=dataset.profiles,
        progress=None if bar is None else (lambda position: bar(position)),
    )
    if bar is not None:
        bar.close()
    path, version = write_pretrained(args.out, model, key, dataset=dataset.name, events=events)
    print(
        f"pretrained {version} on {len(events):,} events of {dataset.name} "
        f"({model.n_users:,} users, {model.n_items:,} items): {path} "
        f"({path.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


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


class _ProgressBar:
    """A one-line progress bar on stderr (``\\r``-redrawn at most every ``interval`` seconds)."""

    WIDTH = 28

    def __init__(self, label: str, total: int, interval: float = 0.5) -> None:
        self.label = label
        self.total = max(total, 1)
        self.interval = interval
        self._started = time.monotonic()
        self._last_draw = -math.inf
        self._position = 0
        self._drawn = -1

    def __call__(self, position: int, result: object = None) -> None:
        self._position = position
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = self._position
        done = min(self._position / self.total, 1.0)
        elapsed = max(now - self._started, 1e-9)
        rate = self._position / elapsed
        eta = (self.total - self._position) / rate if rate > 0 else math.inf
        filled = int(done * self.WIDTH)
        eta_text = "--:--" if not math.isfinite(eta) else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        sys.stderr.write(
            f"\r{self.label:>20} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{done:4.0%} {self._position:,}/{self.total:,} {rate:,.0f} events/s ETA {eta_text} "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self._drawn != self._position:
            self._draw(time.monotonic())
        sys.stderr.write("\n")
        sys.stderr.flush()


def _evaluate_usage_error(args: argparse.Namespace) -> str | None:
    from stream.registry import BASELINES, DEFAULT_MODEL, MODELS

    if args.model is None:
        args.model = DEFAULT_MODEL
    if args.model not in MODELS and args.model not in BASELINES:
        return f"unknown model {args.model!r}; known: {', '.join([*MODELS, *BASELINES])}"
    if args.tradeoff and args.report is None:
        return "--tradeoff needs --report DIR (the sweep is reported as a plot)"
    if args.k < 1 or (args.limit is not None and args.limit < 1):
        return "--k and --limit must be at least 1"
    if args.skip < 0:
        return "--skip must be >= 0"
    if args.frozen and not args.warm_start:
        return "--frozen needs --warm-start (a model that never learns must start trained)"
    if args.warm_start and (args.baselines or args.tradeoff):
        return "--warm-start evaluates one model: it cannot be combined with --baselines/--tradeoff"
    return None


def _evaluate_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this evaluation, every setting spelled out."""
    import shlex

    words = ["streamrec", "evaluate", "--dataset", args.dataset, "--model", args.model]
    words += ["--k", str(args.k)]
    if args.skip:
        words += ["--skip", str(args.skip)]
    if args.limit is not None:
        words += ["--limit", str(args.limit)]
    if args.warm_start:
        words += ["--warm-start", str(args.warm_start)]
    if args.frozen:
        words.append("--frozen")
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    if args.baselines:
        words.append("--baselines")
    if args.report is not None:
        words += ["--report", str(args.report)]
    if args.tradeoff:
        words.append("--tradeoff")
    for pair in args.param:
        words += ["--param", pair]
    return shlex.join(words)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import functools
    import json

    from stream.datasets import load_dataset
    from stream.evaluation.run import TRADEOFF_WEIGHTS, evaluate_run, rounded, takes_argument
    from stream.registry import BASELINES, model_class

    _setup_logging(args.log_level)
    usage = _evaluate_usage_error(args)
    if usage is not None:
        print(f"streamrec evaluate: error: {usage}", file=sys.stderr)
        return 2
    if args.report is not None:
        from stream.evaluation.report import require_matplotlib, write_report

        require_matplotlib()  # fail now, not after minutes of evaluation
    cls = model_class(args.model)
    params = {"seed": args.seed} if args.seed is not None and takes_argument(cls, "seed") else {}
    try:
        params.update(_model_params(args.param))
        cls(**params)  # fail now on a bad parameter, not after loading data
    except (ValueError, TypeError) as exc:
        print(f"streamrec evaluate: error: bad --param: {exc}", file=sys.stderr)
        return 2
    factory: Callable[..., Any] = functools.partial(cls, **params)
    if args.warm_start:
        factory = _warm_start_factory(args.warm_start, args.snapshot_key_file, args.frozen)
    dataset = load_dataset(
        args.dataset,
        seed=0 if args.seed is None else args.seed,
        progress=lambda text: print(text, file=sys.stderr),
    )
    if args.skip:
        dataset = dataclasses.replace(dataset, events=dataset.events[args.skip :])
    bars: list[_ProgressBar] = []

    def progress_for(label: str, total: int) -> _ProgressBar | None:
        if args.quiet:
            return None
        if bars:
            bars[-1].close()
        bars.append(_ProgressBar(label, total))
        return bars[-1]

    command = _evaluate_command(args)
    summary = evaluate_run(
        dataset,
        factory,
        k=args.k,
        limit=args.limit,
        baselines=dict(BASELINES) if args.baselines else None,
        tradeoff_weights=TRADEOFF_WEIGHTS if args.tradeoff else None,
        progress_for=progress_for,
    )
    if bars:
        bars[-1].close()
    summary = rounded({**summary, "command": command})
    if summary.get("tradeoff_skipped"):
        print(f"streamrec: note: {summary['tradeoff_skipped']}", file=sys.stderr)
    if args.report is not None:
        written = write_report(summary, args.report, command=command)
        print(f"report: {', '.join(str(p) for p in written)}", file=sys.stderr)
    print(json.dumps(summary, allow_nan=False))
    return 0


def _warm_start_factory(path: str, key_file: str | None, frozen: bool) -> Callable[[], Any]:
    """Loads (and verifies) the snapshot now; builds the evaluated model from it."""
    from stream import snapshot
    from stream.warm_start import FrozenRecommender, load_pretrained

    model, _version = load_pretrained(path, snapshot.load_key(key_file))

    def factory() -> Any:
        return FrozenRecommender(model) if frozen else model

    return factory


def _model_params(pairs: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs as model parameters; values are Python literals, else strings."""
    import ast

    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            params[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key] = text
    return params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamrec", description="Real-time recommendations learned online from Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the service: consume events, learn, publish lists")
    add_settings_arguments(run)
    run.set_defaults(handler=_cmd_run)

    produce = commands.add_parser("produce", help="replay a dataset into the events topic")
    produce.add_argument("--dataset", default="ml-100k", help=DATASET_HELP)
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

    pretrain = commands.add_parser(
        "pretrain", help="learn from a dataset's history and write a signed warm-start snapshot"
    )
    pretrain.add_argument("--dataset", default="ml-100k", help=DATASET_HELP)
    pretrain.add_argument("--model", default=None, help="registered model (default: the default)")
    pretrain.add_argument("--limit", type=int, default=None, help="learn only the first N events")
    pretrain.add_argument("--out", required=True, type=Path, help="snapshot file to write")
    pretrain.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a model hyper-parameter"
    )
    pretrain.add_argument(
        "--snapshot-key-file",
        default=None,
        help="file with the signing key (default: $STREAMREC_SNAPSHOT_KEY)",
    )
    pretrain.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    pretrain.add_argument("--log-level", default="WARNING", help="logging level")
    pretrain.set_defaults(handler=_cmd_pretrain)

    evaluate = commands.add_parser(
        "evaluate",
        help="offline prequential (test-then-learn) evaluation; JSON summary on stdout",
    )
    evaluate.add_argument("--dataset", default="ml-100k", help=DATASET_HELP)
    evaluate.add_argument(
        "--model",
        default=None,
        help="a registered model (default: the registry's default, multitask) or an anchor: "
        "popularity, decayed-popularity, genre-popularity, river-biasedmf, itemcf, itemcf-recency",
    )
    evaluate.add_argument("--k", type=int, default=10, help="list length (default 10)")
    evaluate.add_argument(
        "--skip",
        type=int,
        default=0,
        help="start after the first N events (those pretrained on)",
    )
    evaluate.add_argument(
        "--limit", type=int, default=None, help="use only the first N events (after --skip)"
    )
    evaluate.add_argument(
        "--warm-start",
        default=None,
        metavar="SNAPSHOT",
        help="start from a `streamrec pretrain` snapshot instead of an empty model",
    )
    evaluate.add_argument(
        "--frozen",
        action="store_true",
        help="with --warm-start: rank with the snapshot but never learn (the no-updates control)",
    )
    evaluate.add_argument(
        "--snapshot-key-file",
        default=None,
        help="file with the key that verifies snapshots (default: $STREAMREC_SNAPSHOT_KEY)",
    )
    evaluate.add_argument(
        "--baselines",
        action="store_true",
        help="also run the anchors (popularity, decayed popularity, River BiasedMF, "
        "item-CF plain and recency-weighted) on the same events",
    )
    evaluate.add_argument(
        "--report", type=Path, default=None, metavar="DIR", help="write plots and summary.md here"
    )
    evaluate.add_argument(
        "--tradeoff",
        action="store_true",
        help="sweep the model's diversity weight (one pass per weight; needs --report)",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the synthetic stream and of the model (anchors keep their own)",
    )
    evaluate.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model hyper-parameter, e.g. --param task_mode=single (repeatable)",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    evaluate.add_argument("--log-level", default="WARNING", help="logging level")
    evaluate.set_defaults(handler=_cmd_evaluate)
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
