"""Settings: flags, STREAMREC_* environment variables, invariants, secrets."""

from __future__ import annotations

import dataclasses
import ssl

import pytest

from consumers.cli import build_parser
from consumers.config import Settings, settings_from_args, unknown_environment
from consumers.errors import ConfigError


def parse_run(argv, monkeypatch=None):
    return settings_from_args(build_parser().parse_args(["run", *argv]))


def test_defaults_match_the_contract():
    s = parse_run([])
    assert (s.group_id, s.input_topic, s.output_topic, s.dlq_topic) == (
        "streamrec",
        "user-events",
        "recommendations",
        "user-events.dlq",
    )
    assert (s.catalog_topic, s.profile_topic) == ("item-catalog", "user-profiles")
    assert (s.k, s.metrics_port, s.processing_guarantee) == (10, 9108, "at-least-once")


def test_environment_sets_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("STREAMREC_BOOTSTRAP_SERVERS", "kafka:29092")
    monkeypatch.setenv("STREAMREC_K", "20")
    monkeypatch.setenv("STREAMREC_CREATE_TOPICS", "false")
    s = parse_run([])
    assert (s.bootstrap_servers, s.k, s.create_topics) == ("kafka:29092", 20, False)
    assert parse_run(["--k", "5"]).k == 5


def test_bad_environment_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("STREAMREC_METRICS_PORT", "ninety")
    with pytest.raises(ConfigError, match="STREAMREC_METRICS_PORT"):
        build_parser()


def test_invariants_are_checked():
    with pytest.raises(ConfigError, match="k must be"):
        Settings(k=0)
    with pytest.raises(ConfigError, match="must differ"):
        Settings(output_topic="user-events")
    with pytest.raises(ConfigError, match="sasl_mechanism"):
        Settings(security_protocol="SASL_SSL")
    with pytest.raises(ConfigError, match="unknown settings"):
        Settings.from_mapping({"bootstrap_server": "x"})


def test_unknown_streamrec_variables_are_reported(monkeypatch):
    monkeypatch.setenv("STREAMREC_BOOTSTRAP_SERVER", "typo")
    assert "STREAMREC_BOOTSTRAP_SERVER" in unknown_environment()


def test_sasl_password_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    s = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password_file=str(secret),
    )
    assert s.kafka_client_config()["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(s.describe())
    monkeypatch.setenv("STREAMREC_SASL_PASSWORD", "fromenv")
    s = Settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc")
    assert s.kafka_client_config()["sasl_plain_password"] == "fromenv"


def test_exactly_once_names_a_stable_transactional_id_per_worker():
    a = Settings(processing_guarantee="exactly-once", group_id="g", instance_id="worker-1")
    assert a.transactional_id() == "streamrec-g-worker-1"
    assert Settings(group_id="g", instance_id="worker-1").transactional_id() == a.transactional_id()
    assert Settings(group_id="g", instance_id="worker-2").transactional_id() != a.transactional_id()
    with pytest.raises(ConfigError, match="transaction_timeout_ms"):
        Settings(transaction_timeout_ms=10)


def test_checkpoints_without_a_signing_key_are_refused_clearly(capsys, monkeypatch, tmp_path):
    from consumers.cli import main

    monkeypatch.delenv("STREAMREC_SNAPSHOT_KEY", raising=False)
    assert main(["run", "--state-dir", str(tmp_path)]) == 2
    assert "STREAMREC_SNAPSHOT_KEY" in capsys.readouterr().err


# ------------------------------------------------------------------ security settings

SASL_SSL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMREC_SASL_PASSWORD", raising=False)
    path = tmp_path / "password"
    path.write_text("hunter2-but-longer\n")
    return path


def test_the_password_is_in_no_repr_and_no_logged_settings(password_file, monkeypatch):
    s = Settings(**SASL_SSL, sasl_username="svc", sasl_password_file=str(password_file))
    assert s.sasl_password() == "hunter2-but-longer"  # one trailing newline dropped
    for shown in (repr(s), str(s), repr(s.describe())):
        assert "hunter2" not in shown
    monkeypatch.setenv("STREAMREC_SASL_PASSWORD", "env-secret")
    with pytest.raises(ConfigError, match="set only one") as info:
        Settings(**SASL_SSL, sasl_username="svc", sasl_password_file=str(password_file))
    assert "hunter2" not in str(info.value) and "env-secret" not in str(info.value)
    s = Settings(**SASL_SSL, sasl_username="svc")
    assert "env-secret" not in repr(s) and s.sasl_password() == "env-secret"


def test_sasl_settings_that_cannot_work_are_refused(password_file, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="needs a password: set STREAMREC_SASL_PASSWORD"):
        Settings(**SASL_SSL, sasl_username="svc")
    with pytest.raises(ConfigError, match="needs sasl_username"):
        Settings(**SASL_SSL, sasl_password_file=str(password_file))
    with pytest.raises(ConfigError, match="one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"):
        Settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-1", sasl_username="svc")
    with pytest.raises(ConfigError, match="PLAIN over SASL_PLAINTEXT sends the password"):
        Settings(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username="svc",
            sasl_password_file=str(password_file),
        )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        Settings(**SASL_SSL, sasl_username="svc", sasl_password_file=str(empty))
    with pytest.raises(ConfigError, match="cannot read sasl_password_file"):
        Settings(**SASL_SSL, sasl_username="svc", sasl_password_file=str(tmp_path / "missing"))
    monkeypatch.setenv("STREAMREC_SASL_PASSWORD", "")
    with pytest.raises(ConfigError, match="STREAMREC_SASL_PASSWORD is empty"):
        Settings(**SASL_SSL, sasl_username="svc")


def test_security_settings_that_would_be_ignored_are_refused(password_file, tmp_path):
    with pytest.raises(ConfigError, match="sasl_mechanism, sasl_username: only for security"):
        Settings(sasl_mechanism="SCRAM-SHA-512", sasl_username="svc")
    with pytest.raises(ConfigError, match="ssl_cafile: only for security_protocol SSL"):
        Settings(ssl_cafile=str(password_file))
    with pytest.raises(ConfigError, match="ssl_keyfile needs ssl_certfile"):
        Settings(security_protocol="SSL", ssl_keyfile=str(password_file))
    with pytest.raises(ConfigError, match="ssl_cafile .* is not a readable file"):
        Settings(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        Settings(security_protocol="SSL", ssl_cafile=str(not_pem))


def test_tls_always_verifies_certificates_and_host_names(password_file):
    s = Settings(**SASL_SSL, sasl_username="svc", sasl_password_file=str(password_file))
    config = s.kafka_client_config()
    context = config["ssl_context"]
    assert config["ssl_check_hostname"] is True
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert "ssl_check_hostname" not in {f.name for f in dataclasses.fields(Settings)}
    assert "ssl_context" not in Settings(security_protocol="PLAINTEXT").kafka_client_config()


def test_a_password_on_the_command_line_is_refused_without_echoing_it(capsys):
    from consumers.cli import main

    for argv in (["--sasl-password", "hunter2"], ["--sasl-password=hunter2"]):
        assert main(["run", *argv]) == 2
        err = capsys.readouterr().err
        assert "--sasl-password is not accepted" in err and "hunter2" not in err
    # No abbreviations: a prefix of --sasl-password-file is not taken for it.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--sasl-password-f", "x"])


def test_kafka_python_debug_logs_are_redacted(caplog):
    import logging

    import consumers.clients  # noqa: F401 - installs the redacting filter

    with caplog.at_level(logging.DEBUG, logger="kafka"):
        logging.getLogger("kafka.admin.client").debug(
            "Starting KafkaAdminClient with configuration: %s",
            {"sasl_plain_username": "svc", "sasl_plain_password": "hunter2"},
        )
        logging.getLogger("kafka.protocol.parser").debug("%s Send: %r", "x", b"\0svc\0hunter2")
    assert "svc" in caplog.text and "[redacted]" in caplog.text
    assert "hunter2" not in caplog.text
