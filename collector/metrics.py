"""The collector's instrumentation, following the contract in ARCHITECTURE.md (decision 11).

Every stage counts what it received and sent, its errors by bounded `error_type` and `stage`,
and what it discarded (with `intentional`). Labels never carry per-event or per-address values;
`agent` labels are not used either (agent health is in the registry, not in label sets).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class CollectorMetrics:
    """All collector metrics, registered on an injected registry."""

    registry: CollectorRegistry
    received_events: Counter
    received_batches: Counter
    stored_events: Counter
    duplicate_batches: Counter
    errors: Counter
    discarded: Counter
    rejected_batches: Counter
    alerts: Counter
    throttled_batches: Counter
    streams_open: Gauge
    bus_depth: Gauge
    store_seconds: Histogram
    detection_seconds: Histogram
    enrollments: Counter
    enrollment_refusals: Counter
    streams_closed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> CollectorMetrics:
        r = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=r,
            received_events=Counter(
                "canhgac_collector_received_events", "Events received from agents", registry=r
            ),
            received_batches=Counter(
                "canhgac_collector_received_batches", "Batches received from agents", registry=r
            ),
            stored_events=Counter(
                "canhgac_collector_stored_events", "Events durably stored", registry=r
            ),
            duplicate_batches=Counter(
                "canhgac_collector_duplicate_batches",
                "Batches received again after being stored (acknowledged, not stored twice)",
                registry=r,
            ),
            errors=Counter(
                "canhgac_collector_errors",
                "Errors by stage and type",
                ["stage", "error_type"],
                registry=r,
            ),
            discarded=Counter(
                "canhgac_collector_discarded_events",
                "Events not stored, by stage and reason",
                ["stage", "reason", "intentional"],
                registry=r,
            ),
            rejected_batches=Counter(
                "canhgac_collector_rejected_batches",
                "Batches refused by ingest limits, by reason",
                ["reason"],
                registry=r,
            ),
            throttled_batches=Counter(
                "canhgac_collector_throttled_batches",
                "Batches after which an agent was told to pause for exceeding its rate",
                registry=r,
            ),
            alerts=Counter(
                "canhgac_collector_alerts",
                "Alerts raised, by rule and severity",
                ["rule_id", "severity"],
                registry=r,
            ),
            streams_open=Gauge(
                "canhgac_collector_agent_streams", "Agent streams currently open", registry=r
            ),
            bus_depth=Gauge(
                "canhgac_collector_bus_depth", "Batches waiting for detection", registry=r
            ),
            store_seconds=Histogram(
                "canhgac_collector_store_batch_seconds",
                "Time to store one batch durably",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=r,
            ),
            detection_seconds=Histogram(
                "canhgac_collector_detection_batch_seconds",
                "Time to run detection over one batch",
                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
                registry=r,
            ),
            enrollments=Counter(
                "canhgac_collector_enrollments",
                "Agent certificates issued, by kind (enroll, renew)",
                ["kind"],
                registry=r,
            ),
            enrollment_refusals=Counter(
                "canhgac_collector_enrollment_refusals",
                "Enroll and Renew requests refused, by kind and reason (token_expired, bad_csr...)",
                ["kind", "reason"],
                registry=r,
            ),
            streams_closed=Counter(
                "canhgac_collector_streams_closed",
                "Open agent streams ended by the collector, by reason (revoked, expired)",
                ["reason"],
                registry=r,
            ),
        )
