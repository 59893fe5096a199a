"""The deployment files under ``deploy/`` agree with the code.

Pure parsing: no Docker, no network (one test binds a throw-away metrics
server on 127.0.0.1 to run the image's health check against it). Expected
values are read from the code (``Settings`` defaults, ``topic_specs``, the
metrics registry, ``pyproject.toml``), never written down twice, so changing
a default, a topic, a metric or the console script without the deployment
fails here.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shlex
import socket
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from consumers.cli import build_parser
from consumers.clients import topic_specs
from consumers.config import (
    ENV_PREFIX,
    OTHER_ENV,
    Settings,
    settings_from_args,
    unknown_environment,
)
from consumers.metrics import ServiceMetrics

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

DEFAULTS = Settings()
FIELDS = {f.name for f in dataclasses.fields(Settings)}
TOPIC_FIELDS = sorted(name for name in FIELDS if name.endswith("_topic"))


# --------------------------------------------------------------------------- loading


@cache
def load_yaml(relative: str) -> Any:
    return yaml.safe_load((DEPLOY / relative).read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose allows a mapping or a KEY=VALUE list)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def container_ports(svc: dict[str, Any]) -> list[int]:
    ports = []
    for spec in svc.get("ports", []):
        if isinstance(spec, dict):
            ports.append(int(spec["target"]))
        else:
            ports.append(int(str(spec).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source (a named volume or a path relative to deploy/)."""
    result = {}
    for spec in svc.get("volumes", []):
        if isinstance(spec, dict):
            result[spec["target"]] = spec.get("source", "")
        else:
            source, target = str(spec).split(":")[:2]
            result[target] = source
    return result


def is_bind(source: str) -> bool:
    return source.startswith((".", "/"))


def field_of(env_name: str) -> str:
    assert env_name.startswith(ENV_PREFIX), f"{env_name} is not a {ENV_PREFIX}* variable"
    return env_name[len(ENV_PREFIX) :].lower()


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}."""
    result = {}
    for item in spec.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continuation line"
    return instructions


def instruction(keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile() if key == keyword]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for rest in instruction("ENV"):
        for token in shlex.split(rest):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def healthcheck_command() -> list[str]:
    (rest,) = instruction("HEALTHCHECK")
    _options, marker, command = rest.partition("CMD ")
    assert marker, "HEALTHCHECK has no CMD"
    return json.loads(command)


@cache
def exported_series() -> frozenset[str]:
    """Every series name the service's registry exposes, with the exposition suffixes."""
    names: set[str] = set()
    for family in ServiceMetrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        elif family.type == "summary":
            names |= {family.name, family.name + "_sum", family.name + "_count"}
        else:
            names.add(family.name)
    return frozenset(names)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_METRIC = re.compile(r"\bstreamrec_[a-zA-Z0-9_:]*")


def metrics_in(expr: str) -> set[str]:
    """The streamrec_* series names a PromQL expression uses (label values excluded)."""
    return set(_METRIC.findall(_STRING.sub('""', expr)))


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml("alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


@cache
def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana/dashboards/streamrec.json").read_text(encoding="utf-8"))


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def scrape_job(name: str) -> dict[str, Any]:
    jobs = {job["job_name"]: job for job in load_yaml("prometheus.yml")["scrape_configs"]}
    assert name in jobs, f"prometheus.yml has no scrape job {name!r}"
    return jobs[name]


def kafka_internal_address() -> tuple[str, int]:
    env = environment(service("kafka"))
    inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    return listeners(env["KAFKA_ADVERTISED_LISTENERS"])[inter]


def parse_cli(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse a container's command line the way the image would, under its environment."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_parser().parse_args(argv)


# --------------------------------------------------------------------------- compose: streamrec


def test_compose_has_the_services() -> None:
    services = compose()["services"]
    assert {"kafka", "streamrec", "prometheus"} <= set(services)
    assert service("kafka")["image"] == "apache/kafka:4.1.1"
    build = service("streamrec")["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert (DEPLOY / build["context"] / "pyproject.toml").is_file()


def test_streamrec_env_names_are_settings() -> None:
    env = environment(service("streamrec"))
    assert env, "streamrec is configured through STREAMREC_* variables"
    unknown = sorted(name for name in env if field_of(name) not in FIELDS and name not in OTHER_ENV)
    assert not unknown, f"not fields of consumers.config.Settings: {unknown}"


def test_streamrec_topics_and_port_equal_code_defaults() -> None:
    env = environment(service("streamrec"))
    assert TOPIC_FIELDS, "Settings has no *_topic fields"
    for field in TOPIC_FIELDS:
        assert env.get(env_name(field)) == getattr(DEFAULTS, field), field
    topics = {env[env_name(field)] for field in TOPIC_FIELDS}
    assert topics == set(topic_specs(DEFAULTS))
    assert int(env[env_name("metrics_port")]) == DEFAULTS.metrics_port
    assert env[env_name("metrics_host")] == "0.0.0.0"


def test_streamrec_env_makes_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service("streamrec")
    env = environment(svc)
    args = parse_cli(list(svc["command"]), env, monkeypatch)
    assert args.command == "run"
    assert unknown_environment() == []
    settings = settings_from_args(args)  # runs Settings' own validation
    for name, value in env.items():
        if name in OTHER_ENV:
            continue  # read elsewhere (secrets such as the snapshot key are no settings)
        field = field_of(name)
        assert getattr(settings, field) == type(getattr(DEFAULTS, field))(value), name
    # The environment really reaches the service (not just the defaults).
    assert settings.state_dir == env[env_name("state_dir")] != DEFAULTS.state_dir


def test_streamrec_state_dir_is_a_volume() -> None:
    svc = service("streamrec")
    state_dir = environment(svc)[env_name("state_dir")]
    source = mounts(svc).get(state_dir)
    assert source, f"{state_dir} is not mounted"
    assert is_bind(source) or source in (compose().get("volumes") or {})


def test_streamrec_port_lifecycle_and_dependencies() -> None:
    svc = service("streamrec")
    assert DEFAULTS.metrics_port in container_ports(svc)
    assert svc["stop_signal"] == "SIGTERM"
    assert svc["stop_grace_period"] == "60s"
    assert svc["restart"] in ("always", "unless-stopped", "on-failure")
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in service("kafka")


def test_bind_mounts_exist() -> None:
    for name, svc in compose()["services"].items():
        for target, source in mounts(svc).items():
            if is_bind(source):
                assert (DEPLOY / source).exists(), f"{name}: {source} (for {target}) is missing"
            else:
                assert source in (compose().get("volumes") or {}), f"{name}: volume {source}"


# --------------------------------------------------------------------------- compose: kafka


def test_kafka_kraft_single_node_config() -> None:
    env = environment(service("kafka"))
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(bound) <= set(protocols)
    assert set(advertised) <= set(bound)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in bound and controller not in advertised
    node_id, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node_id == env["KAFKA_NODE_ID"]
    assert int(voter.rpartition(":")[2]) == bound[controller][1]
    # The service talks to the internal listener with its default security protocol.
    assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == DEFAULTS.security_protocol
    # The host listener is published and is what the health check probes.
    host_listener = next(name for name, (host, _) in advertised.items() if host == "localhost")
    host_port = advertised[host_listener][1]
    assert host_port in container_ports(service("kafka"))
    assert f"localhost:{host_port}" in service("kafka")["healthcheck"]["test"]
    assert service("kafka")["volumes"], "kafka data needs a volume"


def test_kafka_internal_listener_is_the_bootstrap_server() -> None:
    env = environment(service("kafka"))
    host, port = kafka_internal_address()
    inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert listeners(env["KAFKA_LISTENERS"])[inter][1] == port
    assert host in ("kafka", service("kafka").get("hostname"))
    bootstrap = environment(service("streamrec"))[env_name("bootstrap_servers")]
    assert bootstrap == f"{host}:{port}"


def test_kafka_init_creates_the_code_topics() -> None:
    script = "\n".join(service("kafka-init")["command"])
    created: dict[str, dict[str, str]] = {}
    for line in script.splitlines():
        tokens = shlex.split(line)
        if not tokens or not tokens[0].endswith("kafka-topics.sh"):
            continue
        options: dict[str, list[str]] = {}
        for flag, value in zip(tokens[1:], tokens[2:], strict=False):
            if flag.startswith("--") and not value.startswith("--"):
                options.setdefault(flag, []).append(value)
        assert "--create" in tokens
        assert options["--bootstrap-server"] == ["{}:{}".format(*kafka_internal_address())]
        assert options["--partitions"] == [str(DEFAULTS.partitions)]
        (topic,) = options["--topic"]
        created[topic] = dict(config.split("=", 1) for config in options.get("--config", []))
    assert created == topic_specs(DEFAULTS)
    compose_deps = service("streamrec")["depends_on"]
    assert compose_deps["kafka-init"]["condition"] == "service_completed_successfully"


# --------------------------------------------------------------------------- compose: producer


def test_producer_is_a_demo_profile_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service("producer")
    assert svc["profiles"] == ["demo"]
    assert svc["image"] == service("streamrec")["image"]
    env = environment(svc)
    for name in env:
        assert name in OTHER_ENV or field_of(name) in FIELDS, name
    args = parse_cli(list(svc["command"]), env, monkeypatch)
    assert (args.command, args.dataset, args.rate) == ("produce", "ml-100k", 500.0)
    assert args.bootstrap_servers == "{}:{}".format(*kafka_internal_address())
    for field in ("input_topic", "catalog_topic", "profile_topic"):
        assert getattr(args, field) == getattr(DEFAULTS, field)


# --------------------------------------------------------------------------- prometheus


def test_prometheus_scrapes_the_service() -> None:
    job = scrape_job("streamrec")
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "5s"
    (target,) = [t for group in job["static_configs"] for t in group["targets"]]
    host, _, port = target.rpartition(":")
    assert host == "streamrec" and host in compose()["services"]
    assert int(port) == DEFAULTS.metrics_port


def test_prometheus_files_are_mounted() -> None:
    volumes = mounts(service("prometheus"))
    assert (DEPLOY / volumes["/etc/prometheus/prometheus.yml"]).resolve() == (
        DEPLOY / "prometheus.yml"
    )
    rule_files = load_yaml("prometheus.yml")["rule_files"]
    assert rule_files
    for path in rule_files:
        assert path in volumes, f"rule file {path} is not mounted"
        assert (DEPLOY / volumes[path]).resolve() == DEPLOY / "alerts.yml"
    assert 9090 in container_ports(service("prometheus"))


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"], rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
    used = set().union(*(metrics_in(rule["expr"]) for rule in rules))
    assert {
        "streamrec_consumer_lag",
        "streamrec_dlq_published_total",
        "streamrec_last_event_processed_timestamp_seconds",
        "streamrec_checkpoint_last_success_timestamp_seconds",
        "streamrec_online_hit_rate",
    } <= used
    jobs = {job["job_name"] for job in load_yaml("prometheus.yml")["scrape_configs"]}
    for rule in rules:
        for job in re.findall(r'job="([^"]*)"', rule["expr"]):
            assert job in jobs, rule["alert"]


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_metric_names_exist_in_the_code(source: str) -> None:
    exprs = [rule["expr"] for rule in alert_rules()] if source == "alerts" else dashboard_exprs()
    assert exprs
    used = set().union(*(metrics_in(expr) for expr in exprs))
    assert used, f"no streamrec_* metric in the {source}"
    missing = sorted(used - exported_series())
    assert not missing, f"{source} use metrics the service does not export: {missing}"


# --------------------------------------------------------------------------- grafana


def test_grafana_dashboard_and_datasource() -> None:
    board = dashboard()
    panel_ids = [panel["id"] for panel in board["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    (datasource,) = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert datasource["url"] == f"http://prometheus:{container_ports(service('prometheus'))[0]}"
    for panel in board["panels"]:
        assert panel["title"] and panel["gridPos"] and panel["targets"], panel["id"]
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    assert any("rate(streamrec_events_consumed_total[1m])" in e for e in dashboard_exprs())
    (provider,) = load_yaml("grafana/provisioning/dashboards/streamrec.yml")["providers"]
    volumes = mounts(service("grafana"))
    board_dir = (DEPLOY / volumes[provider["options"]["path"]]).resolve()
    assert board_dir == (DEPLOY / "grafana/dashboards")
    provisioning = (DEPLOY / volumes["/etc/grafana/provisioning"]).resolve()
    assert provisioning == DEPLOY / "grafana/provisioning"


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_image_user_and_install() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    users = instruction("USER")
    assert users and users[-1] not in ("root", "0")
    assert any("pip install --no-cache-dir" in run for run in instruction("RUN"))
    for name in dockerfile_env():
        if name.startswith(ENV_PREFIX):
            assert name in OTHER_ENV or field_of(name) in FIELDS, name
    state_dir = environment(service("streamrec"))[env_name("state_dir")]
    assert dockerfile_env()[env_name("state_dir")] == state_dir
    assert any(state_dir in run and "chown" in run for run in instruction("RUN"))


def test_dockerfile_exposes_the_metrics_port() -> None:
    assert instruction("EXPOSE") == [str(DEFAULTS.metrics_port)]


def test_entrypoint_is_a_console_script() -> None:
    (entrypoint,) = instruction("ENTRYPOINT")
    (cmd,) = instruction("CMD")
    assert json.loads(cmd) == ["run"] == service("streamrec")["command"]
    (script,) = json.loads(entrypoint)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    assert script in scripts, f"{script} is not in [project.scripts]"
    module, _, function = scripts[script].partition(":")
    assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_healthcheck_probes_metrics_on_the_default_port() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    code = command[2]
    compile(code, "<HEALTHCHECK>", "exec")
    assert "curl" not in code and "urllib.request" in code
    assert "http://127.0.0.1:" in code and "/metrics" in code
    (default,) = re.findall(rf"'{env_name('metrics_port')}', '(\d+)'", code)
    assert int(default) == DEFAULTS.metrics_port
    assert "metrics_port" in FIELDS


def test_healthcheck_passes_against_the_metrics_server(monkeypatch: pytest.MonkeyPatch) -> None:
    code = healthcheck_command()[2]
    server, thread = start_http_server(0, addr="127.0.0.1", registry=ServiceMetrics().registry)
    try:
        monkeypatch.setenv(env_name("metrics_port"), str(server.server_port))
        exec(code, {})  # noqa: S102 - the Dockerfile's own health check
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with socket.socket() as sock:  # a port nobody listens on: the check must fail
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv(env_name("metrics_port"), str(sock.getsockname()[1]))
    with pytest.raises(OSError):
        exec(code, {})  # noqa: S102


def test_build_context_keeps_what_pip_install_needs() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pyproject.toml" in kept and pyproject["project"]["readme"] in kept
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        path.name
        for path in ROOT.iterdir()
        if (path / "__init__.py").is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns)
    }
    assert packages and packages <= kept, f"packages left out of the build: {packages - kept}"
