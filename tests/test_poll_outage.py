"""The service loop's poll rides out a cluster that cannot be reached.

kafka-python sometimes raises a retriable error out of ``poll`` when the broker
disappears (the group coordinator lookup gets a refused connection); a real
broker outage made the worker exit that way once in CI
(``tests/integration/test_broker_outage.py``). Whether the client raises or
quietly returns nothing depends on where it is when the broker goes, so this
unit test drives that exact path with a stand-in consumer; the integration
test keeps covering the real outage.
"""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError

from consumers import app
from consumers.app import RecommenderService
from consumers.config import Settings
from stream.registry import build_model


class _Side:
    def poll(self) -> int:
        return 0


class _FlakyConsumer:
    """Raises the queued errors from ``poll``, one per call, then returns a batch."""

    def __init__(self, errors: list[Exception], batch: dict) -> None:
        self.errors = errors
        self.batch = batch

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        if self.errors:
            raise self.errors.pop(0)
        return self.batch


def _service(consumer: _FlakyConsumer, monkeypatch) -> RecommenderService:
    monkeypatch.setattr(app, "POLL_BACKOFF_S", 0.01)
    monkeypatch.setattr(app, "POLL_BACKOFF_CAP_S", 0.02)
    service = RecommenderService(Settings(), build_model("hybrid"))
    service._poll_backoff = app.POLL_BACKOFF_S
    service._consumer = consumer
    service._side = _Side()
    return service


def _unavailable(service: RecommenderService) -> float:
    return service.metrics.registry.get_sample_value("streamrec_broker_unavailable_total") or 0.0


def test_a_refused_connection_while_polling_is_waited_out(monkeypatch):
    refused = KafkaConnectionError("111 ECONNREFUSED")
    service = _service(
        _FlakyConsumer([refused, refused, OSError("reset")], {"tp": ["r"]}), monkeypatch
    )
    assert service._poll_input() == {}
    assert service._poll_input() == {}
    assert service._poll_input() == {}
    assert _unavailable(service) == 3
    assert service._poll_backoff == app.POLL_BACKOFF_CAP_S  # doubled, then capped
    assert service._poll_input() == {"tp": ["r"]}  # the cluster is back
    assert service._poll_backoff == app.POLL_BACKOFF_S


def test_an_error_that_retrying_cannot_fix_still_stops_the_worker(monkeypatch):
    service = _service(
        _FlakyConsumer([SaslAuthenticationFailedError("bad password")], {}), monkeypatch
    )
    with pytest.raises(SaslAuthenticationFailedError):
        service._poll_input()
    assert _unavailable(service) == 0
