"""Settings of the service, from flags or ``STREAMREC_<FLAG>`` environment variables.

One :class:`Settings` dataclass holds every knob with its default; the command
line is generated from it, so a flag, its environment variable and its default
cannot drift apart. Construction checks the invariants between settings and
rejects unknown keys (as kafka-python's ``DEFAULT_CONFIG`` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumers.errors import ConfigError

ENV_PREFIX = "STREAMREC_"
PROCESSING_GUARANTEES = ("at-least-once", "exactly-once")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: Environment variables read elsewhere (not flags of ``run``), so not typos.
OTHER_ENV = {"STREAMREC_CACHE_DIR", "STREAMREC_REQUIRE_KAFKA", "STREAMREC_LOG_LEVEL"}


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
    model: str = _opt("hybrid", "model class (see stream.registry.MODELS)")
    metrics_host: str = _opt("0.0.0.0", "address the /metrics server binds to")  # noqa: S104
    metrics_port: int = _opt(9108, "port of the /metrics server (0: pick a free one)")
    state_dir: str = _opt("./streamrec-state", "directory for model state")
    processing_guarantee: str = _opt(
        "at-least-once", "at-least-once or exactly-once", choices=PROCESSING_GUARANTEES
    )
    max_batch: int = _opt(2000, "most records taken in one micro-batch (max_poll_records)")
    poll_timeout_ms: int = _opt(500, "how long one poll waits for records")
    partitions: int = _opt(3, "partitions of topics this service creates when missing")
    replication_factor: int = _opt(
        0, "replication of created topics (0: min(3, brokers in the cluster))"
    )
    create_topics: bool = _opt(True, "create missing topics at start-up")
    security_protocol: str = _opt(
        "PLAINTEXT", "Kafka security protocol", choices=SECURITY_PROTOCOLS
    )
    sasl_mechanism: str = _opt("", "SASL mechanism, e.g. SCRAM-SHA-512")
    sasl_username: str = _opt("", "SASL user name")
    sasl_password_file: str = _opt(
        "", "file holding the SASL password (or set STREAMREC_SASL_PASSWORD)"
    )
    ssl_cafile: str = _opt("", "CA bundle to verify the brokers' certificates")
    ssl_certfile: str = _opt("", "client certificate (mutual TLS)")
    ssl_keyfile: str = _opt("", "client private key (mutual TLS)")
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
        if self.processing_guarantee not in PROCESSING_GUARANTEES:
            raise ConfigError(
                f"processing_guarantee must be one of {PROCESSING_GUARANTEES}, "
                f"got {self.processing_guarantee!r}"
            )
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"security_protocol must be one of {SECURITY_PROTOCOLS}")
        if self.security_protocol.startswith("SASL") and not self.sasl_mechanism:
            raise ConfigError(f"security_protocol {self.security_protocol} needs sasl_mechanism")
        topics = [self.input_topic, self.output_topic, self.dlq_topic]
        if len(set(topics)) != len(topics):
            raise ConfigError("input, output and dead-letter topics must differ")
        if not self.bootstrap_servers.strip():
            raise ConfigError("bootstrap_servers is empty")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Settings from a mapping; unknown keys are an error, not silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def kafka_client_config(self) -> dict[str, Any]:
        """Connection and security settings shared by every kafka-python client."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",")],
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password()
        if self.ssl_cafile:
            config["ssl_cafile"] = self.ssl_cafile
            config["ssl_check_hostname"] = True
        if self.ssl_certfile:
            config["ssl_certfile"] = self.ssl_certfile
        if self.ssl_keyfile:
            config["ssl_keyfile"] = self.ssl_keyfile
        return config

    def sasl_password(self) -> str:
        """The SASL password, from a file or the environment, never from a flag.

        A flag would show the secret in process lists; a file or an
        environment variable does not.
        """
        if self.sasl_password_file:
            return Path(self.sasl_password_file).read_text(encoding="utf-8").strip()
        return os.environ.get(f"{ENV_PREFIX}SASL_PASSWORD", "")

    def describe(self) -> dict[str, Any]:
        """Settings safe to log (no secrets are fields, but keep it explicit)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_settings_arguments(parser: argparse.ArgumentParser, only: set[str] | None = None) -> None:
    """Add one ``--flag`` per :class:`Settings` field, defaulting to ``STREAMREC_<FLAG>``."""
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
    known |= OTHER_ENV | {f"{ENV_PREFIX}SASL_PASSWORD"}
    return sorted(name for name in os.environ if name.startswith(ENV_PREFIX) and name not in known)
