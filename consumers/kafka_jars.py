"""The Apache Kafka broker jars and the Java that runs them.

:func:`fetch_kafka_jars` downloads the broker jars from Maven Central once into
a cache directory (:func:`kafka_lib_dir`); ``_find_java`` locates a JDK new
enough for the broker (:data:`MIN_JAVA`).

Environment
-----------
STREAMREC_CACHE_DIR
    Root of streamrec's cache (default ``~/.cache/streamrec``); the Kafka jars go
    to ``$STREAMREC_CACHE_DIR/kafka-<version>/lib``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from consumers.broker_process import BrokerError

__all__ = [
    "KAFKA_VERSION",
    "LOG4J_VERSION",
    "MIN_JAVA",
    "SCALA_VERSION",
    "default_cache_dir",
    "fetch_kafka_jars",
    "kafka_lib_dir",
]

# Every broker module logs as "consumers.brokers", the name these messages
# had before the module was split (logging.getLogger returns one shared logger).
log = logging.getLogger("consumers.brokers")

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"
#: Kafka 4 brokers need Java 17 (clients alone would run on 11).
MIN_JAVA = 17


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
