"""Revoked partitions are checkpointed before they are let go, and a slow save is reported.

kafka-python runs the revoke callback on its network thread, and sends no
heartbeat until it returns; the broker's session clock runs on. A save that
takes longer than the session timeout lets the group hand the partitions on
while it is still being written, so the worker warns once a save takes half
of it. A real broker showed that hand-over with a 15 s callback and a 10 s
session timeout.
"""

from __future__ import annotations

import logging

from kafka import TopicPartition

from consumers import app, clients
from consumers.app import RecommenderService
from consumers.checkpoint import CheckpointStore
from consumers.config import Settings
from stream.events import Event
from stream.registry import build_model

TP = TopicPartition("events", 0)


def _service_owning_a_dirty_partition(tmp_path) -> RecommenderService:
    store = CheckpointStore(tmp_path, "g", key=b"k" * 32)
    service = RecommenderService(Settings(group_id="g"), build_model("hybrid"), checkpoints=store)
    state = service.partitions.assign(TP, committed=None)
    state.model.learn_one(Event("u1", "i1", "click", timestamp=1.0))
    state.dirty = True
    return service


def test_a_revoked_partition_is_saved_then_dropped(tmp_path, caplog):
    service = _service_owning_a_dirty_partition(tmp_path)
    with caplog.at_level(logging.WARNING, logger=app.log.name):
        service.partitions_revoked([TP])
    assert service.partitions.get(TP) is None
    assert service.partitions.store.load(TP) is not None
    assert "session timeout" not in caplog.text  # a small save is far below it


def test_a_revoke_save_over_half_the_session_timeout_is_a_warning(tmp_path, caplog, monkeypatch):
    service = _service_owning_a_dirty_partition(tmp_path)
    monkeypatch.setattr(clients, "SESSION_TIMEOUT_MS", 0)  # any save takes longer than that
    with caplog.at_level(logging.WARNING, logger=app.log.name):
        service.partitions_revoked([TP])
    assert "checkpointing 1 revoked partition(s) took" in caplog.text
    assert service.partitions.store.load(TP) is not None
