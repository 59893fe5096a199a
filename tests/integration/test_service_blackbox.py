"""Black box, against a real broker: MovieLens-100K in, contract-conforming lists out.

The real ``streamrec run`` process consumes all 100,000 ratings with 1,000
malformed records interleaved. Then: every user with an event has a list of
k distinct unseen items whose trigger is that user's last event; every bad
record is in the dead-letter topic, unchanged, with its reason; /metrics
serves the contract's metrics with the right counts; SIGTERM exits 0.
"""

from __future__ import annotations

import collections
import uuid

import msgpack
import pytest

from consumers.deadletter import dead_letter_headers
from consumers.produce import make_replay_producer, produce_dataset
from stream.datasets import load_dataset

from .poison import poison_records
from .service_process import ServiceProcess, read_topic, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

K = 10
N_POISON = 1000

CONTRACT_METRICS = [
    "streamrec_events_consumed_total",
    "streamrec_events_invalid_total",
    "streamrec_dlq_published_total",
    "streamrec_recommendations_published_total",
    "streamrec_batch_processing_seconds_count",
    "streamrec_event_to_recommendation_seconds_count",
    "streamrec_consumer_lag",
    "streamrec_model_users",
    "streamrec_model_items",
    "streamrec_online_hit_rate",
    "streamrec_task_auc",
    "streamrec_checkpoint_last_success_timestamp_seconds",
    "streamrec_last_event_processed_timestamp_seconds",
]


@pytest.fixture(scope="module")
def movielens():
    return load_dataset("ml-100k")


@pytest.fixture(scope="module", params=["hybrid", "multitask"])
def replayed(request, kafka_broker, movielens, tmp_path_factory):
    """Run the service over MovieLens-100K plus poison; yield what came out."""
    prefix = f"bb-{request.param}-{uuid.uuid4().hex[:6]}"
    topics = {
        "input": f"{prefix}-events",
        "catalog": f"{prefix}-catalog",
        "profiles": f"{prefix}-profiles",
        "output": f"{prefix}-recs",
        "dlq": f"{prefix}-dlq",
    }
    poison = poison_records(N_POISON)
    step = len(movielens.events) // N_POISON
    extras = [(i * step, key, value) for i, (key, value, _) in enumerate(poison)]
    log_dir = tmp_path_factory.mktemp("service")
    model = request.param
    with ServiceProcess(
        kafka_broker.bootstrap_servers, topics, log_dir, "--k", str(K), "--model", model
    ) as service:
        producer = make_replay_producer(kafka_broker.bootstrap_servers)
        produce_dataset(
            producer,
            movielens,
            events_topic=topics["input"],
            catalog_topic=topics["catalog"],
            profile_topic=topics["profiles"],
            extra_records=extras,
        )
        producer.close()
        expected = len(movielens.events)
        wait_until(
            lambda: (
                service.total("streamrec_events_consumed_total") >= expected
                and service.total("streamrec_dlq_published_total") >= N_POISON
            ),
            timeout=600,
            what=f"{expected} events and {N_POISON} dead letters",
            service=service,
        )
        metrics = service.scrape()
        families = service.families()
        exit_code = service.terminate()
    yield {
        "topics": topics,
        "model": model,
        "metrics": metrics,
        "families": families,
        "exit_code": exit_code,
        "poison": poison,
        "recs": read_topic(kafka_broker.bootstrap_servers, topics["output"]),
        "dlq": read_topic(kafka_broker.bootstrap_servers, topics["dlq"]),
    }


def test_every_user_gets_k_distinct_unseen_items_from_their_last_event(replayed, movielens):
    latest = {}
    for record in replayed["recs"]:
        latest[record.key.decode()] = record.value
    seen = collections.defaultdict(set)
    last_event = {}
    for event in movielens.events:
        seen[event.user_id].add(event.item_id)
        last_event[event.user_id] = event
    assert set(latest) == set(seen)  # a list for every user who had an event
    for user_id, value in latest.items():
        message = msgpack.unpackb(value)
        assert message["user_id"] == user_id
        items = [entry["item_id"] for entry in message["items"]]
        assert len(items) == K == len(set(items)), user_id
        assert not set(items) & seen[user_id], user_id
        for entry in message["items"]:
            assert set(entry) == {"item_id", "score", "scores", "reason"}
            assert entry["reason"]
        assert message["trigger_event_id"] == last_event[user_id].event_id
        assert message["event_timestamp"] == last_event[user_id].timestamp
        assert isinstance(message["model_version"], str) and message["model_version"]
        assert message["generated_at"] > 1.6e9


def test_every_bad_record_is_dead_lettered_unchanged_with_its_reason(replayed):
    letters = replayed["dlq"]
    assert len(letters) == N_POISON
    sent = collections.Counter((key, value, reason) for key, value, reason in replayed["poison"])
    got = collections.Counter()
    for record in letters:
        headers = dead_letter_headers(record.headers)
        assert headers["source.topic"] == replayed["topics"]["input"]
        assert int(headers["source.offset"]) >= 0 and headers["consumer.group"]
        assert headers["error.class"] == "InvalidRecord" and headers["error.message"]
        got[(record.key, record.value, headers["error.reason"])] += 1
    assert got == sent


def test_metrics_follow_the_contract(replayed):
    metrics = replayed["metrics"]
    names = {name for name, _ in metrics} | replayed["families"]
    missing = [name for name in CONTRACT_METRICS if name not in names]
    assert not missing
    consumed = metrics[("streamrec_events_consumed_total", (("event_type", "rating"),))]
    assert consumed == 100_000
    invalid = sum(v for (n, _), v in metrics.items() if n == "streamrec_events_invalid_total")
    assert invalid == N_POISON
    assert metrics[("streamrec_model_users", ())] == 943
    assert metrics[("streamrec_online_hit_rate", (("k", str(K)),))] > 0.0
    if replayed["model"] == "multitask":
        # MovieLens ratings label the "like" task; its rolling AUC must be served.
        assert 0.5 < metrics[("streamrec_task_auc", (("task", "like"),))] <= 1.0


def test_sigterm_exits_cleanly(replayed):
    assert replayed["exit_code"] == 0
