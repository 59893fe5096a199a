"""Settings: flags, STREAMREC_* environment variables, invariants, secrets."""

from __future__ import annotations

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
    s = Settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512")
    assert s.kafka_client_config()["sasl_plain_password"] == "fromenv"


def test_exactly_once_is_refused_until_it_exists(capsys):
    from consumers.cli import main

    assert main(["run", "--processing-guarantee", "exactly-once"]) == 2
    assert "exactly-once is not available" in capsys.readouterr().err
