"""Settings of the service, from flags or ``STREAMREC_<FLAG>`` environment variables.

One :class:`Settings` dataclass holds every knob with its default; the command
line is generated from it, so a flag, its environment variable and its default
cannot drift apart. Construction checks the invariants between settings and
rejects unknown keys (as kafka-python's ``DEFAULT_CONFIG`` does).

Secrets are never settings. The SASL password comes from
``STREAMREC_SASL_PASSWORD`` or from the file named by ``--sasl-password-file``
and is read only when a Kafka client is built, so it is in no ``repr``, no
logged settings and no process list (``docs/security.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumers.errors import ConfigError

ENV_PREFIX = "STREAMREC_"
PROCESSING_GUARANTEES = ("at-least-once", "exactly-once")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: The SASL mechanisms a password can drive (kafka-python would accept an
#: unknown name here and only fail, obscurely, at connection time).
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: The one place a SASL password may come from besides a file.
SASL_PASSWORD_ENV = "STREAMREC_SASL_PASSWORD"  # noqa: S105 - a variable's name, no secret
#: Where the snapshot signing key may come from besides a file (see stream.snapshot).
SNAPSHOT_KEY_ENV = "STREAMREC_SNAPSHOT_KEY"
#: Environment variables read elsewhere (not flags of ``run``), so not typos.
OTHER_ENV = {
    "STREAMREC_CACHE_DIR",
    "STREAMREC_REQUIRE_KAFKA",
    "STREAMREC_LOG_LEVEL",
    SASL_PASSWORD_ENV,
    SNAPSHOT_KEY_ENV,
}


def _opt(default: Any, help: str, **extra: Any) -> Any:  # noqa: A002 - mirrors argparse
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Settings:
    """Everything ``streamrec run`` can be told. Field names are the flag names."""

    bootstrap_servers: str = _opt("localhost:9092", "Kafka bootstrap servers, comma-separated")
    group_id: str = _opt("streamrec", "consumer group of the workers")
    input_topic: str = _opt("user-events", "topic of user events (in)")
    catalog_topic: str = _opt("item-catalog", "topic of catalog items (in, compacted)")
    profile_topic: str = _opt("user-profiles", "topic of user profiles (in, compacted)")
    output_topic: str = _opt("recommendations", "topic of recommendations (out, compacted)")
    dlq_topic: str = _opt("user-events.dlq", "dead-letter topic for rejected records")
    k: int = _opt(10, "items per recommendation list")
    model: str = _opt("multitask", "model class (see stream.registry.MODELS)")
    metrics_host: str = _opt("0.0.0.0", "address the /metrics server binds to")  # noqa: S104
    metrics_port: int = _opt(9108, "port of the /metrics server (0: pick a free one)")
    state_dir: str = _opt(
        "",
        "directory for partition checkpoints, shared by the group's workers "
        "(empty: no checkpoints, a restart starts from an empty model)",
    )
    checkpoint_interval_s: float = _opt(
        30.0, "seconds between checkpoints of a partition that keeps learning"
    )
    snapshot_key_file: str = _opt(
        "",
        f"file holding the key that signs and verifies snapshots and checkpoints "
        f"(or set {SNAPSHOT_KEY_ENV})",
    )
    warm_start: str = _opt("", "snapshot (from `streamrec pretrain`) new partitions start from")
    processing_guarantee: str = _opt(
        "at-least-once", "at-least-once or exactly-once", choices=PROCESSING_GUARANTEES
    )
    instance_id: str = _opt(
        "",
        "this worker's stable name (default: the host name); exactly-once derives its "
        "transactional id from it, so a restarted worker fences its previous incarnation",
    )
    transaction_timeout_ms: int = _opt(
        30_000, "exactly-once: how long the broker keeps a dead worker's transaction open"
    )
    max_batch: int = _opt(2000, "most records taken in one micro-batch (max_poll_records)")
    poll_timeout_ms: int = _opt(500, "how long one poll waits for records")
    partitions: int = _opt(
        1,
        "partitions of topics this service creates when missing (each input partition "
        "has its own model: see README, Scaling out)",
    )
    replication_factor: int = _opt(
        0, "replication of created topics (0: min(3, brokers in the cluster))"
    )
    create_topics: bool = _opt(True, "create missing topics at start-up")
    security_protocol: str = _opt(
        "PLAINTEXT", "Kafka security protocol", choices=SECURITY_PROTOCOLS
    )
    sasl_mechanism: str = _opt("", f"SASL mechanism: {', '.join(SASL_MECHANISMS)}")
    sasl_username: str = _opt("", "SASL user name")
    sasl_password_file: str = _opt(
        "", f"file holding the SASL password (or set {SASL_PASSWORD_ENV}; never a flag)"
    )
    ssl_cafile: str = _opt(
        "", "PEM CA bundle the brokers' certificates must chain to (default: the system's)"
    )
    ssl_certfile: str = _opt("", "PEM client certificate, for brokers that require mutual TLS")
    ssl_keyfile: str = _opt("", "PEM private key of ssl_certfile, if not in that file")
    log_level: str = _opt("INFO", "logging level")

    def __post_init__(self) -> None:
        from stream.registry import MODELS  # local: keeps config importable alone

        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be in 0..65535, got {self.metrics_port}")
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.partitions < 1:
            raise ConfigError(f"partitions must be >= 1, got {self.partitions}")
        if self.checkpoint_interval_s < 0:
            raise ConfigError(
                f"checkpoint_interval_s must be >= 0, got {self.checkpoint_interval_s}"
            )
        if self.transaction_timeout_ms < 1000:
            raise ConfigError(
                f"transaction_timeout_ms must be >= 1000, got {self.transaction_timeout_ms}"
            )
        if self.processing_guarantee not in PROCESSING_GUARANTEES:
            raise ConfigError(
                f"processing_guarantee must be one of {PROCESSING_GUARANTEES}, "
                f"got {self.processing_guarantee!r}"
            )
        self._check_security()
        topics = [self.input_topic, self.output_topic, self.dlq_topic]
        if len(set(topics)) != len(topics):
            raise ConfigError("input, output and dead-letter topics must differ")
        if not self.bootstrap_servers.strip():
            raise ConfigError("bootstrap_servers is empty")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def _check_security(self) -> None:
        """Refuse security settings that would be ignored, or could not work."""
        protocol = self.security_protocol
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"security_protocol must be one of {SECURITY_PROTOCOLS}")
        sasl = {"sasl_mechanism", "sasl_username", "sasl_password_file"}
        tls = {"ssl_cafile", "ssl_certfile", "ssl_keyfile"}
        if not self.uses_sasl and (given := sorted(n for n in sasl if getattr(self, n))):
            raise ConfigError(
                f"{', '.join(given)}: only for security_protocol SASL_SSL or "
                f"SASL_PLAINTEXT, not {protocol}"
            )
        if not self.uses_ssl and (given := sorted(n for n in tls if getattr(self, n))):
            raise ConfigError(
                f"{', '.join(given)}: only for security_protocol SSL or SASL_SSL, not {protocol}"
            )
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ConfigError(
                    f"security_protocol {protocol} needs sasl_mechanism, one of "
                    f"{', '.join(SASL_MECHANISMS)} (got {self.sasl_mechanism or 'none'!r})"
                )
            if protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN":
                raise ConfigError(
                    "sasl_mechanism PLAIN over SASL_PLAINTEXT sends the password in clear "
                    "text; use SASL_SSL, or a SCRAM mechanism"
                )
            if not self.sasl_username:
                raise ConfigError(f"security_protocol {protocol} needs sasl_username")
            self.sasl_password()  # fail now, not at the first connection
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ConfigError("ssl_keyfile needs ssl_certfile (the certificate it belongs to)")
        for name in sorted(tls):
            path = getattr(self, name)
            if path and not os.access(path, os.R_OK):
                raise ConfigError(f"{name} {path!r} is not a readable file")
        if self.uses_ssl:
            self.ssl_context()  # a CA bundle that is not PEM fails now, too

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Settings from a mapping; unknown keys are an error, not silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` as a list of ``host:port``."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def kafka_client_config(self) -> dict[str, Any]:
        """Connection and security settings shared by every kafka-python client.

        The result holds the SASL password: hand it to a client, never log it.
        """
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list(),
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password()
        if self.uses_ssl:
            # kafka-python takes the context as is; ssl_check_hostname is
            # repeated so that a reader of this dict sees the check is on.
            config["ssl_context"] = self.ssl_context()
            config["ssl_check_hostname"] = True
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS policy of every connection to Kafka.

        The broker's certificate must chain to ``ssl_cafile`` (or to the
        system's CAs) and name the host the client dialled; TLS 1.2 at
        least. There is deliberately no setting to turn either check off.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if self.ssl_cafile:
                context.load_verify_locations(cafile=self.ssl_cafile)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"cannot load the TLS files (ssl_cafile={self.ssl_cafile!r}, "
                f"ssl_certfile={self.ssl_certfile!r}, ssl_keyfile={self.ssl_keyfile!r}): "
                f"{exc.__class__.__name__}: {exc.strerror or exc}"
            ) from None
        return context

    def sasl_password(self) -> str:
        """The SASL password, from a file or the environment, never from a flag.

        A flag would show the secret in process lists; a file or an
        environment variable does not. The file is read at every call, so a
        rotated password is picked up by the next client. One trailing
        newline is ignored. Errors name where the password was looked for,
        never what it is.

        Raises
        ------
        ConfigError
            If neither or both sources are set, the file cannot be read, or
            the password is empty.
        """
        from_env = os.environ.get(SASL_PASSWORD_ENV)
        if self.sasl_password_file and from_env is not None:
            raise ConfigError(
                f"both sasl_password_file and {SASL_PASSWORD_ENV} are set; set only one"
            )
        if self.sasl_password_file:
            try:
                text = Path(self.sasl_password_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                # The path is the user's own; the reason is the OS's. Neither is the secret.
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigError(
                    f"cannot read sasl_password_file {self.sasl_password_file!r}: {reason}"
                ) from None
            password = text.removesuffix("\n").removesuffix("\r")
            where = f"sasl_password_file {self.sasl_password_file!r}"
        elif from_env is not None:
            password, where = from_env, SASL_PASSWORD_ENV
        else:
            raise ConfigError(
                f"security_protocol {self.security_protocol} needs a password: set "
                f"{SASL_PASSWORD_ENV} or --sasl-password-file (never a command-line value)"
            )
        if not password:
            raise ConfigError(f"the SASL password in {where} is empty")
        return password

    def transactional_id(self) -> str:
        """Exactly-once: stable per worker (group + instance), so a restart fences the old one."""
        import socket

        return f"streamrec-{self.group_id}-{self.instance_id or socket.gethostname()}"

    def describe(self) -> dict[str, Any]:
        """Settings safe to log: the password is no field, so nothing here is secret."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


class _RefusePasswordFlag(argparse.Action):
    """``--sasl-password``: refused without echoing its value (argparse would)."""

    def __call__(self, *_: object, **__: object) -> None:
        raise ConfigError(
            "--sasl-password is not accepted: a command-line value shows in process lists. "
            f"Set {SASL_PASSWORD_ENV} or --sasl-password-file instead"
        )


def add_settings_arguments(parser: argparse.ArgumentParser, only: set[str] | None = None) -> None:
    """Add one ``--flag`` per :class:`Settings` field, defaulting to ``STREAMREC_<FLAG>``.

    Abbreviated flags are turned off on ``parser``: ``--sasl-password SECRET``
    would otherwise be taken for ``--sasl-password-file`` and the secret
    echoed back in an error message. ``--sasl-password`` itself is refused
    with a message that does not repeat the value.
    """
    parser.allow_abbrev = False
    if only is None or "sasl_password_file" in only:
        parser.add_argument(
            "--sasl-password", nargs="?", action=_RefusePasswordFlag, help=argparse.SUPPRESS
        )
    for f in dataclasses.fields(Settings):
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        converter = _parse_bool if kind is bool else kind
        env_name = ENV_PREFIX + f.name.upper()
        default = f.default
        if env_name in os.environ:
            try:
                default = converter(os.environ[env_name])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise ConfigError(f"{env_name}={os.environ[env_name]!r}: {exc}") from None
        parser.add_argument(
            flag,
            dest=f.name,
            type=converter,
            default=default,
            choices=f.metadata.get("choices"),
            help=f"{f.metadata['help']} (env {env_name}, default {f.default!r})",
        )


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{name: getattr(args, name) for name in names if hasattr(args, name)})


def unknown_environment() -> list[str]:
    """``STREAMREC_*`` variables that match no setting: likely typos, worth a warning."""
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    known |= OTHER_ENV
    return sorted(name for name in os.environ if name.startswith(ENV_PREFIX) and name not in known)
