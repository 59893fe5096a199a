"""Security against a real broker: SASL_SSL with SCRAM-SHA-512, TLS hostname checks.

``secured_kafka`` (tests/conftest.py) is an Apache Kafka whose SASL_SSL
listener presents a certificate from a throwaway CA that names only
``localhost`` and ``127.0.0.1``, and knows one SCRAM-SHA-512 user. Here:

* the real ``streamrec run`` consumes events and publishes lists over
  SASL_SSL, and its password is in neither its command line, its
  environment, its log (at DEBUG) nor /metrics;
* a wrong password, or a mechanism the broker does not enable, ends the
  service within seconds with an error that says so (and not the password);
* dialling the broker by an address its certificate does not name
  (127.0.0.2, relayed to the real listener) is refused by hostname checking,
  by our access check and by kafka-python's own clients, while the same
  relay on 127.0.0.1 works; a CA we were not given is refused too;
* the metrics server listens on ``--metrics-host`` and nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgpack
import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError

from consumers import clients
from consumers.broker_security import SCRAM_MECHANISM
from consumers.brokers import ApacheKafka
from consumers.config import SASL_PASSWORD_ENV, Settings
from stream.events import Event, encode_event

from .service_process import ServiceProcess, free_port, streamrec_command, wait_until

USER = "streamrec"
#: A loopback address (on Linux the whole 127/8 is) that the certificate does not name.
OTHER_LOOPBACK = "127.0.0.2"


# ------------------------------------------------------------------ helpers


def security_flags(kafka: ApacheKafka, *, password_file: bool = True) -> list[str]:
    flags = [
        "--security-protocol", "SASL_SSL",
        "--sasl-mechanism", SCRAM_MECHANISM,
        "--sasl-username", USER,
        "--ssl-cafile", str(kafka.sasl_ssl.ca_file),
    ]  # fmt: skip
    if password_file:
        flags += ["--sasl-password-file", str(kafka.sasl_ssl.password_file(USER))]
    return flags


def secure_settings(kafka: ApacheKafka, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bootstrap_servers": kafka.sasl_ssl_bootstrap_servers,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": SCRAM_MECHANISM,
        "sasl_username": USER,
        "sasl_password_file": str(kafka.sasl_ssl.password_file(USER)),
        "ssl_cafile": str(kafka.sasl_ssl.ca_file),
    }
    values.update(overrides)
    return Settings.from_mapping(values)


def password_of(kafka: ApacheKafka) -> str:
    return kafka.sasl_ssl.users[USER].password


def run_briefly(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> tuple[int, str, float]:
    """Run a command to its end; returns (exit code, stdout+stderr, seconds taken)."""
    started = time.monotonic()
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def service_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != SASL_PASSWORD_ENV}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def http_get(host: str, port: int) -> str | None:
    """GET /metrics from host:port; None if nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as response:  # noqa: S310
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return None


class Relay:
    """A TCP relay from ``listen_host`` (a free port) to ``target``, byte for byte.

    It lets a client reach the real broker under another address: whatever
    the client then refuses, it refuses in the broker's own certificate.
    """

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        try:
            self.server = socket.create_server((listen_host, 0))
        except OSError as exc:
            pytest.skip(f"cannot listen on {listen_host} here: {exc}")
        self.address = f"{listen_host}:{self.server.getsockname()[1]}"
        self.target = target
        self.connections = 0
        self._sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                return  # closed
            self.connections += 1
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def relays(secured_kafka):
    """Relays to the SASL_SSL listener on 127.0.0.1 (named) and 127.0.0.2 (not named)."""
    host, port = secured_kafka.sasl_ssl_bootstrap_servers.split(",")[0].rsplit(":", 1)
    named, unnamed = Relay("127.0.0.1", (host, int(port))), Relay(OTHER_LOOPBACK, (host, int(port)))
    yield named, unnamed
    named.close()
    unnamed.close()


def read_lists(settings: Settings, topic: str, timeout: float = 60) -> dict[str, dict]:
    """The latest list per user in ``topic``, read over the settings' (secured) connection."""
    reader = clients.make_reader(settings)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic))]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        ends = reader.end_offsets(partitions)
        latest: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in reader.poll(timeout_ms=500).values():
                for record in batch:
                    latest[record.key.decode()] = msgpack.unpackb(record.value)
        return latest
    finally:
        reader.close()


# ------------------------------------------------------------------ the service over SASL_SSL


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_service_runs_over_sasl_ssl_without_showing_its_password(
    secured_kafka, unique_topic, tmp_path, monkeypatch
):
    monkeypatch.delenv(SASL_PASSWORD_ENV, raising=False)
    password = password_of(secured_kafka)
    settings = secure_settings(secured_kafka)
    topics = {
        name: unique_topic(name) for name in ("input", "catalog", "profiles", "output", "dlq")
    }
    users = [f"u{i}" for i in range(5)]
    # DEBUG: even kafka-python's most detailed log must not carry the password.
    flags = [*security_flags(secured_kafka), "--log-level", "DEBUG"]
    with ServiceProcess(
        secured_kafka.sasl_ssl_bootstrap_servers, topics, tmp_path, *flags
    ) as service:
        producer = clients.make_producer(settings)
        for i in range(40):
            user = users[i % len(users)]
            event = Event(user, f"i{(i * 7) % 12}", "click", 1_700_000_000.0 + i, event_id=f"e{i}")
            producer.send(topics["input"], key=user.encode(), value=encode_event(event))
        producer.flush(timeout=30)
        producer.close()
        wait_until(
            lambda: service.total("streamrec_events_consumed_total") >= 40,
            90,
            "the 40 events to be consumed over SASL_SSL",
            service,
        )
        lists = read_lists(settings, topics["output"])
        assert set(lists) == set(users)
        assert all(lists[u]["items"] and lists[u]["user_id"] == u for u in users)

        assert service.process is not None
        pid = service.process.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        metrics = http_get("127.0.0.1", service.metrics_port)
        assert metrics is not None and "streamrec_events_consumed_total" in metrics
        assert service.terminate() == 0
    log_text = service.log_path.read_text(errors="replace")
    assert "SASL_SSL" in log_text and len(log_text) > 10_000  # the log is there, and verbose
    for where, text in {
        "command line": cmdline,
        "environment": environ,
        "log": log_text.encode(),
        "/metrics": metrics.encode(),
    }.items():
        assert password.encode() not in text, f"the password shows in the service's {where}"


@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_wrong_password_stops_the_service_quickly_with_a_clear_error(secured_kafka, tmp_path):
    wrong = secrets.token_urlsafe(16)
    args = [
        *streamrec_command(), "run",
        "--bootstrap-servers", secured_kafka.sasl_ssl_bootstrap_servers,
        *security_flags(secured_kafka, password_file=False),
        "--metrics-host", "127.0.0.1", "--metrics-port", str(free_port()),
    ]  # fmt: skip
    code, output, seconds = run_briefly(args, service_env(**{SASL_PASSWORD_ENV: wrong}))
    assert code == 2, output
    assert seconds < 30, f"took {seconds:.0f}s to give up"
    assert f"SASL authentication as '{USER}' with {SCRAM_MECHANISM} failed" in output
    assert "invalid credentials" in output  # the broker's own reason
    assert wrong not in output and password_of(secured_kafka) not in output


@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_mechanism_the_broker_does_not_enable_is_named(secured_kafka):
    settings = secure_settings(secured_kafka, sasl_mechanism="SCRAM-SHA-256")
    with pytest.raises(
        clients.KafkaSecurityError, match="does not enable SCRAM-SHA-256; it offers"
    ):
        clients.check_access(settings)


# ------------------------------------------------------------------ certificates


@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_hostname_checking_refuses_an_address_the_certificate_does_not_name(
    secured_kafka, relays, tmp_path
):
    named, unnamed = relays
    port = secured_kafka.sasl_ssl_bootstrap_servers.split(",")[0].rsplit(":", 1)[1]
    # Control: the relay itself is transparent, and both names in the certificate pass.
    for address in (named.address, f"localhost:{port}"):
        clients.check_access(secure_settings(secured_kafka, bootstrap_servers=address))
    admin = KafkaAdminClient(
        **secure_settings(secured_kafka, bootstrap_servers=named.address).kafka_client_config()
    )
    assert admin.list_topics() is not None
    admin.close()

    refused = secure_settings(secured_kafka, bootstrap_servers=unnamed.address)
    with pytest.raises(clients.KafkaSecurityError, match="IP address mismatch"):
        clients.check_access(refused)
    # kafka-python's clients refuse it as well (they only say it less clearly).
    with pytest.raises(KafkaError):
        KafkaAdminClient(**refused.kafka_client_config(), bootstrap_timeout_ms=3000)
    assert unnamed.connections >= 2  # the broker was reached; the certificate was refused

    args = [
        *streamrec_command(), "run", "--bootstrap-servers", unnamed.address,
        *security_flags(secured_kafka),
        "--metrics-host", "127.0.0.1", "--metrics-port", str(free_port()),
    ]  # fmt: skip
    code, output, seconds = run_briefly(args, service_env())
    assert code == 2 and seconds < 30, output
    assert f"certificate of {unnamed.address} failed verification: IP address mismatch" in output


@pytest.mark.kafka
@pytest.mark.apache_kafka
def test_a_certificate_from_a_ca_we_were_not_given_is_refused(secured_kafka):
    # Without ssl_cafile the system's CAs are trusted, and they never signed the throwaway CA.
    with pytest.raises(clients.KafkaSecurityError, match="failed verification"):
        clients.check_access(secure_settings(secured_kafka, ssl_cafile=""))


# ------------------------------------------------------------------ metrics address


@pytest.mark.parametrize(
    ("bind", "elsewhere"), [("127.0.0.1", OTHER_LOOPBACK), (OTHER_LOOPBACK, "127.0.0.1")]
)
def test_metrics_server_listens_on_the_configured_address_only(bind, elsewhere, tmp_path):
    # /metrics starts before Kafka is reached, so a broker that is not there will do.
    port = free_port()
    args = [
        *streamrec_command(), "run",
        "--bootstrap-servers", f"127.0.0.1:{free_port()}",
        "--metrics-host", bind, "--metrics-port", str(port),
    ]  # fmt: skip
    with open(tmp_path / "service.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=service_env())
    try:
        deadline = time.monotonic() + 60
        while http_get(bind, port) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (tmp_path / "service.log").read_text(errors="replace")
                if "Cannot assign requested address" in log_text:
                    pytest.skip(f"{bind} is not a local address here")
                raise AssertionError(f"no /metrics on {bind}:{port}:\n{log_text}")
            time.sleep(0.2)
        assert http_get(elsewhere, port) is None, f"/metrics also answers on {elsewhere}"
    finally:
        process.kill()
        process.wait()
