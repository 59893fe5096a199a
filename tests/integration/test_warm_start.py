"""``streamrec run --warm-start``: the service continues from a pretrained snapshot.

Its lists carry the snapshot's model version (configuration + the history it
learned), and users the snapshot knows are ranked from what they did before
the service started.
"""

from __future__ import annotations

import msgpack
import pytest

from stream.datasets.synthetic import generate_synthetic
from stream.registry import build_model
from stream.warm_start import pretrain, write_pretrained

from .service_process import TEST_KEY, ServiceProcess, read_topic, replay_and_wait

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_run_continues_from_a_pretrained_snapshot(kafka_broker, unique_topic, tmp_path):
    data = generate_synthetic(n_users=200, n_items=150, n_events=5000, seed=5)
    history, live = data.events[:4000], data.events[4000:]
    model = pretrain(build_model(), history, catalog=data.items, profiles=data.profiles)
    snapshot, version = write_pretrained(
        tmp_path / "warm.snap", model, TEST_KEY.encode(), dataset=data.name, events=history
    )
    topics = {
        name: unique_topic(name) for name in ("input", "catalog", "profiles", "output", "dlq")
    }
    bootstrap = kafka_broker.bootstrap_servers
    with ServiceProcess(bootstrap, topics, tmp_path, "--warm-start", str(snapshot)) as service:
        replay_and_wait(service, data, events=live, timeout=180, what="the live events")
        users_in_model = service.total("streamrec_model_users")
        assert service.terminate() == 0
    messages = [
        msgpack.unpackb(r.value) for r in read_topic(bootstrap, topics["output"]) if r.value
    ]
    assert messages and {m["model_version"] for m in messages} == {version}
    assert "-pt" in version
    # The live users plus the pretrained ones still active: more than the live stream alone has.
    assert users_in_model > len({e.user_id for e in live})
