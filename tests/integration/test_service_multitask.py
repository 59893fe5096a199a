"""The multi-task model in the real service: lists for every user, task AUCs in /metrics."""

from __future__ import annotations

import msgpack
import pytest

from stream.datasets.synthetic import generate_synthetic

from .service_process import ServiceProcess, read_topic, replay_and_wait, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def state_tables(metrics: dict) -> dict[str, float]:
    """``streamrec_model_state_entries`` by table."""
    return {
        dict(labels)["table"]: value
        for (name, labels), value in metrics.items()
        if name == "streamrec_model_state_entries"
    }


def test_multitask_service_publishes_lists_and_task_aucs(kafka_broker, unique_topic, tmp_path):
    data = generate_synthetic(n_users=300, n_items=200, n_events=6000, seed=11)
    topics = {
        name: unique_topic(name) for name in ("input", "catalog", "profiles", "output", "dlq")
    }
    bootstrap = kafka_broker.bootstrap_servers
    with ServiceProcess(bootstrap, topics, tmp_path, "--model", "multitask") as service:
        replay_and_wait(service, data)
        # The state gauges lag a busy worker by a few seconds; an idle one recounts at once.
        wait_until(
            lambda: state_tables(service.scrape()).get("neighbour_pairs", 0) > 0,
            30,
            "the state gauges",
            service,
        )
        metrics = service.scrape()
        assert service.terminate() == 0
    aucs = {
        dict(labels)["task"]: value
        for (name, labels), value in metrics.items()
        if name == "streamrec_task_auc"
    }
    assert {"click", "add_to_cart", "purchase"} <= set(aucs)
    assert all(0.0 <= value <= 1.0 for value in aucs.values())
    assert aucs["click"] > 0.5  # better than chance on a planted funnel
    tables = state_tables(metrics)
    assert 0 < tables["users"] <= len({e.user_id for e in data.events})
    assert tables["neighbour_pairs"] > 0
    assert metrics[("process_resident_memory_bytes", ())] > 10e6

    latest = {}
    for record in read_topic(bootstrap, topics["output"]):
        latest[record.key.decode()] = record.value
    seen: dict[str, set[str]] = {}
    for event in data.events:
        seen.setdefault(event.user_id, set()).add(event.item_id)
    assert set(seen) <= set(latest)
    for user_id, items in seen.items():
        message = msgpack.unpackb(latest[user_id])
        listed = [entry["item_id"] for entry in message["items"]]
        assert len(listed) == len(set(listed)) == 10
        assert not set(listed) & items
        assert message["model_version"].startswith("multitask-")
        assert {"relevance", "click"} <= set(message["items"][0]["scores"])


def test_lists_are_drawn_from_the_domain_of_the_users_last_event(
    kafka_broker, unique_topic, tmp_path
):
    data = generate_synthetic(n_users=150, n_items=120, n_events=4000, seed=13, n_domains=2)
    domain_of_item = {
        item.item_id: item.features.get("domain") for item in data.items if item.features
    }
    assert len(set(domain_of_item.values()) - {None}) == 2
    topics = {
        name: unique_topic(name) for name in ("input", "catalog", "profiles", "output", "dlq")
    }
    bootstrap = kafka_broker.bootstrap_servers
    with ServiceProcess(bootstrap, topics, tmp_path) as service:
        replay_and_wait(service, data)
        assert service.terminate() == 0
    last_domain = {e.user_id: e.domain for e in data.events}
    latest = {r.key.decode(): r.value for r in read_topic(bootstrap, topics["output"])}
    checked = 0
    for user_id, domain in last_domain.items():
        items = [entry["item_id"] for entry in msgpack.unpackb(latest[user_id])["items"]]
        domains = {domain_of_item.get(item) for item in items} - {None}
        assert domains <= {domain}, (user_id, domain, domains)
        checked += bool(items)
    assert checked > 100
