"""Process, port and admin helpers shared by the local broker launchers.

Used by :mod:`consumers.embedded_broker` and :mod:`consumers.apache_kafka`:
free loopback ports, log tails for error messages, readiness probes with an
admin client, and the children registry that kills brokers still running at
interpreter exit. Also :class:`BrokerError` and :func:`new_cluster_id`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from kafka import KafkaAdminClient

__all__ = ["BrokerError", "new_cluster_id"]

# Every broker module logs as "consumers.brokers", the name these messages
# had before the module was split (logging.getLogger returns one shared logger).
log = logging.getLogger("consumers.brokers")

_T = TypeVar("_T")


class BrokerError(Exception):
    """A broker could not be fetched, started or stopped."""


class StartStop:
    """``with broker:`` starts it and always stops it; subclasses give ``start`` and ``stop``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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
