"""Prometheus metrics of the service, named as the public contract says.

All metrics hang off one registry per service instance (not the global
default), so tests and the demo can run several services in one process.
Labels are bounded: event types, reasons, partitions, task names, never a
user or item id.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from stream.errors import InvalidRecord
from stream.events import EVENT_TYPES

#: Reasons a record can be dead-lettered: the validator's, plus a failure
#: of the model on a valid event (a bug; the record is kept, not lost).
DEAD_LETTER_REASONS = (*InvalidRecord.REASONS, "processing_error")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    """Every metric the service exports, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "streamrec_events_consumed", "Valid events learned", ["event_type"], registry=r
        )
        self.events_invalid = Counter(
            "streamrec_events_invalid", "Records rejected, by reason", ["reason"], registry=r
        )
        self.dlq_published = Counter(
            "streamrec_dlq_published", "Records written to the dead-letter topic", registry=r
        )
        self.recommendations_published = Counter(
            "streamrec_recommendations_published",
            "Recommendation lists published (tombstones included)",
            registry=r,
        )
        self.batch_processing = Histogram(
            "streamrec_batch_processing_seconds",
            "Time to decode, learn, rank, publish and commit one micro-batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_recommendation = Histogram(
            "streamrec_event_to_recommendation_seconds",
            "From an event's Kafka timestamp to the publish of the list it refreshed",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "streamrec_consumer_lag",
            "Records behind the partition's end",
            ["partition"],
            registry=r,
        )
        self.model_users = Gauge("streamrec_model_users", "Users held by the model", registry=r)
        self.model_items = Gauge("streamrec_model_items", "Items held by the model", registry=r)
        self.model_state = Gauge(
            "streamrec_model_state_entries",
            "Entries the model holds, by table (what expiry keeps bounded)",
            ["table"],
            registry=r,
        )
        # process_resident_memory_bytes and friends: memory next to the tables.
        ProcessCollector(registry=r)
        self.online_hit_rate = Gauge(
            "streamrec_online_hit_rate",
            "Share of recent events whose item was in the user's last published top-k",
            ["k"],
            registry=r,
        )
        self.task_auc = Gauge(
            "streamrec_task_auc", "Rolling AUC of each task head", ["task"], registry=r
        )
        self.checkpoint_last_success = Gauge(
            "streamrec_checkpoint_last_success_timestamp_seconds",
            "Wall-clock time of the last successful checkpoint (offsets committed with state)",
            registry=r,
        )
        self.last_event_processed = Gauge(
            "streamrec_last_event_processed_timestamp_seconds",
            "Wall-clock time the last event was processed",
            registry=r,
        )
        self.broker_unavailable = Counter(
            "streamrec_broker_unavailable",
            "Times the service had to wait for the Kafka cluster",
            registry=r,
        )
        # Create every labelled child up front so dashboards see zeros, not gaps.
        for event_type in EVENT_TYPES:
            self.events_consumed.labels(event_type=event_type)
        for reason in DEAD_LETTER_REASONS:
            self.events_invalid.labels(reason=reason)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port``; returns the bound port (useful with port 0)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
