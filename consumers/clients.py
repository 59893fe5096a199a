"""A thin layer over kafka-python: clients built from settings, topics, back-off.

Nothing here knows about recommendations. It makes the consumer, producer
and admin client with the service's settings, creates missing topics, and
waits for a cluster that is not there yet (with logged, capped back-off)
instead of crashing.

A cluster that is there but refuses us is another matter: a certificate
that fails verification or a rejected password will not get better by
waiting. :func:`check_access` finds those out before the first client is
made and raises :class:`KafkaSecurityError`, which the back-off does not
retry (``docs/security.md``).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from consumers.config import Settings
from consumers.errors import ConsumersError

log = logging.getLogger(__name__)


class KafkaSecurityError(ConsumersError):
    """The brokers refused our credentials, or we refused their certificate.

    Unlike an unreachable broker, this is a misconfiguration: retrying
    cannot help, so the service stops with this message.
    """


#: kafka-python configuration keys whose values are secrets.
_SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_password"})


class _RedactKafkaLogs(logging.Filter):
    """Keep secrets out of kafka-python's log, at every level.

    At DEBUG, kafka-python logs the admin client's whole configuration
    (``sasl_plain_password`` included) and dumps raw protocol frames, which
    carry the SASL exchange: SASL/PLAIN sends the password in it as is. The
    first are redacted, the second dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and ("Send: %r" in record.msg or "Recv: %r" in record.msg):
            return False
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = _redacted(record.args)
        return True


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping) and not _SECRET_KEYS.isdisjoint(value):
        return {k: "[redacted]" if k in _SECRET_KEYS and v else v for k, v in value.items()}
    return value


def _protect_kafka_logs() -> None:
    """Put the redacting filter on every ``kafka.*`` logger (filters do not inherit)."""
    redact = _RedactKafkaLogs()
    for name in list(logging.Logger.manager.loggerDict):
        if name == "kafka" or name.startswith("kafka."):
            logging.getLogger(name).addFilter(redact)


_protect_kafka_logs()

T = TypeVar("T")

#: Consumer-group timeouts: short enough that a group forms in ~3 s and a
#: dead worker's partitions move within seconds, long enough for a batch.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000
#: A batch (learn + rank + publish) must finish well within this.
MAX_POLL_INTERVAL_MS = 300_000


def with_backoff(
    what: str,
    attempt: Callable[[], T],
    stop: threading.Event,
    *,
    initial: float = 0.5,
    cap: float = 15.0,
    on_retry: Callable[[], None] | None = None,
) -> T | None:
    """Call ``attempt`` until it succeeds, sleeping with capped exponential back-off.

    Returns None if ``stop`` is set while waiting (shutdown was requested).
    """
    delay = initial
    tries = 0
    while not stop.is_set():
        try:
            return attempt()
        except (KafkaError, OSError) as exc:
            tries += 1
            if on_retry is not None:
                on_retry()
            log.warning(
                "%s failed (try %d: %s: %s); retrying in %.1fs",
                what,
                tries,
                type(exc).__name__,
                exc,
                delay,
            )
            stop.wait(delay)
            delay = min(cap, delay * 2)
    return None


def make_consumer(settings: Settings, **overrides: Any) -> KafkaConsumer:
    config = dict(
        settings.kafka_client_config(),
        group_id=settings.group_id,
        enable_auto_commit=False,  # offsets are committed after publish: at-least-once
        auto_offset_reset="earliest",
        max_poll_records=settings.max_batch,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        client_id=f"streamrec-{settings.group_id}",
    )
    config.update(overrides)
    return KafkaConsumer(**config)


def make_reader(settings: Settings) -> KafkaConsumer:
    """A consumer outside any group, for side topics every worker reads whole."""
    return KafkaConsumer(
        **settings.kafka_client_config(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="streamrec-side-reader",
    )


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config = dict(
        settings.kafka_client_config(),
        acks="all",  # a record counts as published once the in-sync replicas have it
        linger_ms=20,
        retries=5,
        max_block_ms=30_000,
        client_id=f"streamrec-{settings.group_id}-producer",
    )
    config.update(overrides)
    return KafkaProducer(**config)


def make_admin(settings: Settings) -> KafkaAdminClient:
    """The admin client; the service's first client, so it checks access first.

    Raises
    ------
    KafkaSecurityError
        If TLS or SASL is refused (see :func:`check_access`).
    OSError
        If no bootstrap server can be reached (a reason to wait and retry).
    """
    check_access(settings)
    return KafkaAdminClient(**settings.kafka_client_config(), client_id="streamrec-admin")


# ------------------------------------------------------------------ access check

#: SSL errors that mean the connection broke, not that the peer was refused.
_TRANSIENT_SSL_ERRORS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def check_access(settings: Settings, timeout: float = 10.0) -> None:
    """Open one connection the way every client will: TLS, then SASL.

    kafka-python treats a refused certificate or password like a broker
    that is down: it retries until its bootstrap times out and then says
    only "Unable to bootstrap"; the reason is in its own log, which the
    service keeps quiet except at DEBUG. This makes one connection itself, to
    the first bootstrap server that answers, with the same TLS context and
    the same SASL mechanism implementation, and turns a refusal into a
    :class:`KafkaSecurityError` that says what was refused. Nothing to do
    under PLAINTEXT.

    Only bootstrap servers are checked; brokers the cluster advertises are
    reached under their advertised names, which the certificate must hold too.

    Raises
    ------
    KafkaSecurityError
        The certificate failed verification (unknown CA, or the name dialled
        is not in it), the listener does not speak TLS, the broker does not
        enable the SASL mechanism, or it rejected the user name or password.
    OSError
        No bootstrap server could be reached (down, or too slow to answer).
    """
    if not (settings.uses_ssl or settings.uses_sasl):
        return
    config = settings.kafka_client_config()
    unreachable: OSError | None = None
    for server in settings.bootstrap_list():
        host, port = _split_host_port(server)
        try:
            _check_one(host, port, settings, config, timeout)
            return
        except OSError as exc:
            unreachable = exc
    assert unreachable is not None
    raise unreachable


def _split_host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise KafkaSecurityError(f"bootstrap server {server!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _check_one(
    host: str, port: int, settings: Settings, config: dict[str, Any], timeout: float
) -> None:
    where = f"{host}:{port}"
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if settings.uses_ssl:
            sock = _tls_handshake(sock, host, where, config["ssl_context"])
        if settings.uses_sasl:
            _sasl_authenticate(sock, host, where, settings, config)
    finally:
        sock.close()


def _tls_handshake(
    sock: socket.socket, host: str, where: str, context: ssl.SSLContext
) -> ssl.SSLSocket:
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise KafkaSecurityError(
            f"TLS: the certificate of {where} failed verification: {exc.verify_message}. "
            "Hostname checking is always on: connect by a name the certificate holds, "
            "and give the CA that signed it in ssl_cafile"
        ) from None
    except _TRANSIENT_SSL_ERRORS:
        sock.close()
        raise
    except ssl.SSLError as exc:
        sock.close()
        raise KafkaSecurityError(
            f"TLS handshake with {where} failed ({exc.reason or exc}); is it a TLS listener?"
        ) from None


def _sasl_authenticate(
    sock: socket.socket, host: str, where: str, settings: Settings, config: dict[str, Any]
) -> None:
    """SaslHandshake then SaslAuthenticate (v1), as kafka-python's connections do."""
    protocol = KafkaProtocol(client_id="streamrec-access-check")

    def call(request: Any) -> Any:
        protocol.send_request(request)
        sock.sendall(protocol.send_bytes())
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"{where} closed the connection during SASL")
            try:
                responses = protocol.receive_bytes(data)
            except KafkaError as exc:  # e.g. TLS records read as Kafka frames
                raise KafkaSecurityError(
                    f"SASL: {where} did not answer in the Kafka protocol ({exc}); "
                    f"is security_protocol {settings.security_protocol} what this listener speaks?"
                ) from None
            if responses:
                return responses[0][1]

    mechanism_name = settings.sasl_mechanism
    handshake = call(SaslHandshakeRequest(mechanism=mechanism_name, version=1))
    if mechanism_name not in handshake.mechanisms:
        raise KafkaSecurityError(
            f"SASL: {where} does not enable {mechanism_name}; "
            f"it offers {', '.join(handshake.mechanisms) or 'no mechanism'}"
        )
    mechanism = get_sasl_mechanism(mechanism_name)(host=host, **config)
    while not mechanism.is_done():
        response = call(SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes(), version=1))
        if response.error_code != 0:
            raise KafkaSecurityError(
                f"SASL authentication as {settings.sasl_username!r} with {mechanism_name} "
                f"failed at {where}: {response.error_message or 'rejected'}"
            )
        try:
            mechanism.receive(response.auth_bytes)
        except ValueError as exc:  # SCRAM: the server's proof or nonce is wrong
            raise KafkaSecurityError(
                f"SASL: {where} answered {mechanism_name} wrongly ({exc}); is it the real broker?"
            ) from None
    if not mechanism.is_authenticated():
        raise KafkaSecurityError(
            f"SASL authentication as {settings.sasl_username!r} with {mechanism_name} "
            f"failed at {where}: the broker's final answer did not verify"
        )


def topic_specs(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic the service uses, with its cleanup policy (the contract's table)."""
    return {
        settings.input_topic: {"cleanup.policy": "delete"},
        settings.catalog_topic: {"cleanup.policy": "compact"},
        settings.profile_topic: {"cleanup.policy": "compact"},
        settings.output_topic: {"cleanup.policy": "compact"},
        settings.dlq_topic: {"cleanup.policy": "delete"},
    }


def ensure_topics(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """Create the service's topics that are missing; returns the names created."""
    existing = set(admin.list_topics())
    brokers = len(admin.describe_cluster().get("brokers", [])) or 1
    replication = settings.replication_factor or min(3, brokers)
    missing = [
        NewTopic(
            name,
            num_partitions=settings.partitions,
            replication_factor=replication,
            topic_configs=configs,
        )
        for name, configs in topic_specs(settings).items()
        if name not in existing
    ]
    created = []
    for topic in missing:
        try:
            admin.create_topics([topic])
            created.append(topic.name)
        except TopicAlreadyExistsError:
            pass  # another worker created it first
    if created:
        log.info(
            "created topics %s (partitions=%d, replication=%d)",
            created,
            settings.partitions,
            replication,
        )
    return created
