"""A real Apache Kafka broker (KRaft) on loopback, one node or a small cluster.

:class:`ApacheKafka` runs combined broker+controller JVMs from the Maven Central
jars (see :mod:`consumers.kafka_jars`). It needs a JDK 17+ and, the first time,
Maven to fetch the jars into a cache directory. Given a
:class:`~consumers.broker_security.SaslSslListener`, every node also serves
SASL_SSL (SCRAM-SHA-512) behind a throwaway CA.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kafka import KafkaAdminClient

from consumers.broker_process import (
    BrokerError,
    StartStop,
    _argfile_quote,
    _forget,
    _free_ports,
    _spawn,
    _terminate,
    _wait_admin,
    _with_tail,
    new_cluster_id,
)
from consumers.broker_security import BrokerSecurityError, SaslSslListener, write_private
from consumers.kafka_jars import (
    KAFKA_VERSION,
    _find_java,
    _jars_complete,
    fetch_kafka_jars,
    kafka_lib_dir,
)

__all__ = ["KAFKA_READY_LINE", "ApacheKafka"]

# Every broker module logs as "consumers.brokers", the name these messages
# had before the module was split (logging.getLogger returns one shared logger).
log = logging.getLogger("consumers.brokers")

#: Logged once by ``kafka.server.KafkaBroker`` when the server accepts clients.
KAFKA_READY_LINE = "Kafka Server started"


_LOG4J2 = """\
# Written by consumers/brokers.py. Kafka only prints "Kafka Server started",
# which we wait for, when a console appender logs at INFO.
status = warn
name = streamrec-kafka
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Chatty and rarely useful in a test broker.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
"""


@dataclass
class _Node:
    """One combined broker+controller process of an :class:`ApacheKafka` cluster."""

    index: int
    node_id: int
    port: int
    controller_port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    logfile: IO[bytes] | None = None
    #: Byte offset of the log where the current run started (for restarts).
    log_offset: int = 0
    #: Port of the SASL_SSL listener, on a secured cluster.
    secure_port: int | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ApacheKafka(StartStop):
    """A real Apache Kafka broker (KRaft) on loopback, one node or a small cluster.

    Every node is a combined broker+controller JVM with its own free ports and
    data directory. The jars come from :func:`fetch_kafka_jars` (Maven Central,
    cached).

    Parameters
    ----------
    nodes : int
        Number of nodes. With 3 or more, internal topics and the default use
        replication factor 3 and ``min.insync.replicas=2``.
    keep_data : bool
        Keep the working directory (data, configs, logs) after :meth:`stop`.
    cache_dir : path-like, optional
        Cache root for the jars; defaults to :func:`default_cache_dir`.
    heap : str, optional
        Java ``-Xmx`` value; default ``512m`` for one node, ``384m`` per node otherwise.
    jvm_opts : sequence of str, optional
        Extra JVM options appended to the defaults.
    server_properties : mapping, optional
        Broker properties that override or extend the generated ones.
    start_timeout : float
        Seconds to wait for the cluster to start (for each :meth:`start` /
        :meth:`start_node`).
    stop_timeout : float
        Seconds to wait after SIGTERM before SIGKILL.
    sasl_ssl : SaslSslListener, optional
        Also serve SASL_SSL with SCRAM-SHA-512 on every node, with a server
        certificate for ``localhost``/``127.0.0.1`` from a throwaway CA (see
        :mod:`consumers.broker_security`). Inter-broker and controller traffic
        stays PLAINTEXT on loopback, and so does ``bootstrap_servers``; secured
        clients use ``sasl_ssl_bootstrap_servers``.

    Attributes
    ----------
    kind : str
        Always ``"apache"``.
    cluster_id : str or None
        The KRaft cluster id, once started.
    work_dir : pathlib.Path or None
        Holds ``node-<i>/{server.properties,server.log,data}``.

    Notes
    -----
    Node indexes are 0-based; the Kafka ``node.id`` of index ``i`` is ``i + 1``.

    Examples
    --------
    >>> with ApacheKafka(nodes=3) as kafka:  # doctest: +SKIP
    ...     kafka.kill_node(0)
    ...     producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    """

    kind = "apache"

    #: Measured on a 2-core machine: start-up (format included) went from
    #: 3.3 s to 2.9 s for one node and from 11 s to 7.5 s for three. C1-only
    #: JIT compiles far less while starting; the serial GC starts no GC threads.
    #: Peak throughput does not matter for a test broker.
    FAST_START_JVM_OPTS: tuple[str, ...] = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

    def __init__(
        self,
        nodes: int = 1,
        *,
        keep_data: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        heap: str | None = None,
        jvm_opts: Sequence[str] | None = None,
        server_properties: Mapping[str, object] | None = None,
        start_timeout: float = 180.0,
        stop_timeout: float = 20.0,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.nodes = nodes
        self.keep_data = keep_data
        self.cache_dir = cache_dir
        self.heap = heap or ("512m" if nodes == 1 else "384m")
        self.jvm_opts = [*self.FAST_START_JVM_OPTS, *(jvm_opts or ())]
        self.server_properties = dict(server_properties or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.sasl_ssl = sasl_ssl
        self.cluster_id: str | None = None
        self.work_dir: Path | None = None
        self._java: str | None = None
        self._lib: Path | None = None
        self._nodes: list[_Node] = []

    # -- discovery -----------------------------------------------------------
    @staticmethod
    def available(cache_dir: str | os.PathLike[str] | None = None) -> tuple[bool, str]:
        """Tell whether an Apache Kafka broker can be started here.

        Needs Java 17+ and either cached jars or ``mvn`` to fetch them (network
        reachability of Maven Central is not checked).

        Returns
        -------
        tuple of (bool, str)
            ``(True, description)`` or ``(False, reason)``.
        """
        java, reason = _find_java()
        if java is None:
            return False, reason
        lib = kafka_lib_dir(cache_dir)
        if _jars_complete(lib):
            return True, f"{java} with cached jars in {lib}"
        if shutil.which("mvn") is None:
            return False, (
                f"Kafka jars are not cached in {lib} and mvn was not found on PATH; "
                "install Maven or run `python -m consumers.brokers fetch` where it is"
            )
        return True, f"{java}; jars will be fetched with mvn into {lib}"

    # -- properties ----------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated ``host:port`` of every node (running or not)."""
        if not self._nodes:
            raise BrokerError("Kafka is not started")
        return ",".join(n.bootstrap for n in self._nodes)

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """Comma-separated ``host:port`` of every node's SASL_SSL listener."""
        if self.sasl_ssl is None:
            raise BrokerError("this Kafka has no SASL_SSL listener (pass sasl_ssl=...)")
        if not self._nodes:
            raise BrokerError("Kafka is not started")
        return ",".join(n.secure_bootstrap for n in self._nodes)

    def node_bootstrap(self, i: int) -> str:
        """``host:port`` of node ``i`` alone."""
        return self._node(i).bootstrap

    def node_id(self, i: int) -> int:
        """Kafka ``node.id`` of node index ``i``."""
        return self._node(i).node_id

    def log_path(self, i: int = 0) -> Path:
        """Path of node ``i``'s server log (stdout and stderr of its JVM)."""
        return self._node(i).log_path

    def is_alive(self, i: int | None = None) -> bool:
        """Whether node ``i`` (or, by default, every node) is running."""
        if i is not None:
            return self._node(i).alive()
        return bool(self._nodes) and all(n.alive() for n in self._nodes)

    def _node(self, i: int) -> _Node:
        if not self._nodes:
            raise BrokerError("Kafka is not started")
        if not 0 <= i < len(self._nodes):
            raise IndexError(f"node index {i} out of range 0..{len(self._nodes) - 1}")
        return self._nodes[i]

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> ApacheKafka:
        """Fetch the jars if needed, format storage, start every node, wait until ready.

        All nodes are launched before waiting on any: a node only finishes
        starting once the controller quorum has a majority.

        Raises
        ------
        BrokerError
            If Java or the jars are unavailable, or a node fails to start in time.
        """
        if self._nodes:
            raise BrokerError("Kafka already started")
        java, reason = _find_java()
        if java is None:
            raise BrokerError(reason)
        self._java = java
        self._lib = fetch_kafka_jars(self.cache_dir)
        t0 = time.monotonic()
        self.work_dir = Path(tempfile.mkdtemp(prefix="streamrec-kafka-"))
        try:
            self._configure()
            self._format()
            for node in self._nodes:
                self._launch(node)
            deadline = time.monotonic() + self.start_timeout
            for node in self._nodes:
                self._wait_node_ready(node, deadline)
            self._wait_cluster(deadline)
        except BrokerSecurityError as exc:
            self.stop()
            raise BrokerError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        log.info(
            "Apache Kafka %s (%d node%s) ready at %s in %.1fs",
            KAFKA_VERSION, self.nodes, "s" if self.nodes > 1 else "",
            self.bootstrap_servers, time.monotonic() - t0,
        )  # fmt: skip
        return self

    def _properties(self, node: _Node) -> dict[str, object]:
        rf = min(3, self.nodes)
        # With rf=3, tolerate one node down while acks=all writes still succeed.
        min_isr = max(1, rf - 1)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes)
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            # Static quorum: formatting then needs no --standalone/--initial-controllers.
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": 1,
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            # One partition instead of 50: the group coordinator loads much faster.
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Tests join groups one consumer at a time; don't wait 3 s for more.
            "group.initial.rebalance.delay.ms": 0,
            # Lets tests use short session timeouts (default minimum is 6 s).
            "group.min.session.timeout.ms": 1000,
            # Fence a dead broker after 6 s instead of 9 s so that partition
            # leadership fails over sooner in node-loss tests.
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 6000,
            # Fewer threads on small CI machines.
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        if self.sasl_ssl is not None:
            # Clients come in over SASL_SSL; the nodes keep talking PLAINTEXT
            # among themselves on loopback, which is also what the readiness
            # probes use.
            name = self.sasl_ssl.name
            props["listeners"] = f"{props['listeners']},{name}://127.0.0.1:{node.secure_port}"
            props["advertised.listeners"] = (
                f"{props['advertised.listeners']},{name}://127.0.0.1:{node.secure_port}"
            )
            props["listener.security.protocol.map"] = (
                f"{props['listener.security.protocol.map']},{name}:SASL_SSL"
            )
            props.update(self.sasl_ssl.broker_properties())
        props.update(self.server_properties)
        return props

    def _configure(self) -> None:
        assert self.work_dir is not None
        self.cluster_id = new_cluster_id()
        per_node = 3 if self.sasl_ssl is not None else 2
        ports = _free_ports(per_node * self.nodes)
        self._nodes = [
            _Node(
                index=i,
                node_id=i + 1,
                port=ports[per_node * i],
                controller_port=ports[per_node * i + 1],
                directory=self.work_dir / f"node-{i}",
                secure_port=ports[per_node * i + 2] if self.sasl_ssl is not None else None,
            )
            for i in range(self.nodes)
        ]
        if self.sasl_ssl is not None:
            assert self._java is not None
            self.sasl_ssl.prepare(self.work_dir / "security", self._java)
        (self.work_dir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")
        for node in self._nodes:
            node.directory.mkdir(parents=True)
            text = "".join(f"{k}={v}\n" for k, v in self._properties(node).items())
            node.config_path.write_text(text, encoding="utf-8")

    def _java_cmd(self, main_class: str, *args: str, argfile: Path | None = None) -> list[str]:
        """The JVM command line running ``main_class`` with ``args``.

        With ``argfile``, the main class and its arguments go into that file
        (mode 0600) and the command line only names it: the way to hand a
        program secrets without showing them in the process list. The java
        launcher expands ``@file`` up to and including the main class.
        """
        assert self._java is not None and self._lib is not None and self.work_dir is not None
        program = [main_class, *args]
        if argfile is not None:
            write_private(argfile, "".join(f"{_argfile_quote(a)}\n" for a in program))
            program = [f"@{argfile}"]
        return [
            self._java,
            f"-Xmx{self.heap}",
            "-Djava.awt.headless=true",
            # A broker that ran out of heap is useless; exit so the caller notices.
            "-XX:+ExitOnOutOfMemoryError",
            *self.jvm_opts,
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            # The JVM expands "dir/*" itself; no shell is involved.
            "-cp",
            f"{self._lib}/*",
            *program,
        ]

    def _format(self) -> None:
        """Format every node's storage with the same cluster id (in parallel)."""
        assert self.cluster_id is not None
        procs: list[tuple[_Node, Path, subprocess.Popen[bytes]]] = []
        # SCRAM users are created at format time, so that they exist before
        # the first client connects; their passwords travel in an argfile.
        scram = self.sasl_ssl.format_arguments() if self.sasl_ssl is not None else []
        for node in self._nodes:
            out = node.directory / "format.log"
            cmd = self._java_cmd(
                "kafka.tools.StorageTool", "format",
                "-t", self.cluster_id, "-c", str(node.config_path), *scram,
                argfile=node.directory / "format.args" if scram else None,
            )  # fmt: skip
            with open(out, "wb") as fh:
                procs.append((node, out, _spawn(cmd, fh)))
        errors = []
        for node, out, proc in procs:
            try:
                rc = proc.wait(timeout=self.start_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            _forget(proc)
            (node.directory / "format.args").unlink(missing_ok=True)  # holds the passwords
            if rc != 0:
                errors.append(_with_tail(f"formatting node {node.index} failed (exit {rc})", out))
        if errors:
            raise BrokerError("\n".join(errors))

    def _launch(self, node: _Node) -> None:
        if node.logfile is None:
            node.logfile = open(node.log_path, "ab")  # closed in stop()
        node.log_offset = node.log_path.stat().st_size
        cmd = self._java_cmd("kafka.Kafka", str(node.config_path))
        log.debug("launching node %d: %s", node.index, " ".join(cmd))
        node.proc = _spawn(cmd, node.logfile, cwd=node.directory)

    def _dead_message(self, node: _Node) -> str | None:
        if node.proc is None:
            return f"node {node.index} is not running"
        rc = node.proc.poll()
        if rc is None:
            return None
        return _with_tail(f"Kafka node {node.index} exited with code {rc}", node.log_path)

    def _wait_node_ready(self, node: _Node, deadline: float) -> None:
        """Wait for the ready line in this run's part of the log, then an admin call."""
        offset = node.log_offset
        carry = b""
        needle = KAFKA_READY_LINE.encode()
        while True:
            with open(node.log_path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            offset += len(chunk)
            buf = carry + chunk
            if needle in buf:
                break
            carry = buf[-len(needle) :]  # the line may straddle two reads
            if (dead := self._dead_message(node)) is not None:
                raise BrokerError(dead)
            if time.monotonic() > deadline:
                raise BrokerError(
                    _with_tail(
                        f"Kafka node {node.index} did not log {KAFKA_READY_LINE!r} "
                        f"within {self.start_timeout:.0f}s",
                        node.log_path,
                    )
                )
            time.sleep(0.1)
        try:
            _wait_admin(node.bootstrap, deadline, alive=lambda: self._dead_message(node))
        except BrokerError as exc:
            raise BrokerError(_with_tail(str(exc), node.log_path)) from None

    def _wait_cluster(self, deadline: float, expect: Sequence[_Node] | None = None) -> None:
        """Wait until the cluster metadata lists every expected (running) broker."""
        want = {n.node_id for n in (expect if expect is not None else self._nodes)}
        if len(self._nodes) == 1:
            return
        live = [n for n in self._nodes if n.alive()]

        def check(admin: KafkaAdminClient) -> bool:
            brokers = admin.describe_cluster().get("brokers", [])
            # Fenced brokers are registered but cannot lead partitions yet.
            ready = {b.get("broker_id") for b in brokers if not b.get("is_fenced", False)}
            return want <= ready

        _wait_admin(",".join(n.bootstrap for n in live), deadline, check=check)

    def stop(self) -> None:
        """Stop every node (SIGTERM to all at once, SIGKILL after ``stop_timeout``).

        The working directory is removed unless ``keep_data``. Safe to call twice.
        """
        procs = [n.proc for n in self._nodes if n.proc is not None]
        if procs:
            log.info(
                "stopping Apache Kafka (%d running node(s))", sum(p.poll() is None for p in procs)
            )
            _terminate(procs, self.stop_timeout)
        for node in self._nodes:
            node.proc = None
            if node.logfile is not None:
                node.logfile.close()
                node.logfile = None
        self._nodes = []
        if self.work_dir is not None:
            if self.keep_data:
                log.info("kept Kafka data and logs in %s", self.work_dir)
            else:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def stop_node(self, i: int, timeout: float | None = None) -> None:
        """Stop node ``i`` gracefully (SIGTERM, then SIGKILL after ``timeout``)."""
        node = self._node(i)
        if node.proc is not None:
            _terminate([node.proc], self.stop_timeout if timeout is None else timeout)
            log.info("stopped node %d (exit %s)", i, node.proc.returncode)

    def kill_node(self, i: int) -> None:
        """Kill node ``i`` with SIGKILL, simulating a crash."""
        node = self._node(i)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
            _forget(node.proc)
            log.info("killed node %d", i)

    def start_node(self, i: int, timeout: float | None = None) -> None:
        """Restart stopped node ``i`` on its old ports and data dir and wait until ready.

        Raises
        ------
        BrokerError
            If the node is still running, or does not become ready in time.
        """
        node = self._node(i)
        if node.alive():
            raise BrokerError(f"node {i} is already running")
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        t0 = time.monotonic()
        self._launch(node)
        self._wait_node_ready(node, deadline)
        self._wait_cluster(deadline, expect=[node])
        log.info("restarted node %d in %.1fs", i, time.monotonic() - t0)

    def __repr__(self) -> str:
        alive = sum(n.alive() for n in self._nodes)
        return f"ApacheKafka(nodes={self.nodes}, running={alive}, work_dir={self.work_dir})"
