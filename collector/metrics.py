"""The collector's instrumentation, following the contract in ARCHITECTURE.md (decision 11).

Every stage counts what it received and sent, its errors by bounded `error_type` and `stage`,
and what it discarded (with `intentional`). Labels never carry per-event or per-address values;
`agent` labels are not used either (agent health is in the registry, not in label sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from collector.detection.control import EngineStats


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
    bus_capacity: Gauge
    store_seconds: Histogram
    detection_seconds: Histogram
    enrollments: Counter
    enrollment_refusals: Counter
    streams_closed: Counter
    rule_reloads: Counter
    rules_loaded: Gauge
    rule_errors: Gauge
    correlation_groups: Gauge
    correlation_events_not_counted: Gauge
    alerts_suppressed: Counter
    findings: Gauge

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
            bus_capacity=Gauge(
                "canhgac_collector_bus_capacity",
                "Batches the bus holds before ingest waits for detection (ingest.bus_capacity)",
                registry=r,
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
            rule_reloads=Counter(
                "canhgac_collector_rule_reloads",
                "Rule reloads (SIGHUP or a changed rule file), by outcome (ok, with_errors)",
                ["outcome"],
                registry=r,
            ),
            rules_loaded=Gauge(
                "canhgac_collector_rules_loaded", "Detection rules active", registry=r
            ),
            rule_errors=Gauge(
                "canhgac_collector_rule_errors",
                "Rules (or files) that did not load at the last load; each is logged",
                registry=r,
            ),
            correlation_groups=Gauge(
                "canhgac_collector_correlation_groups",
                "Groups (group-by values per agent) held in memory, by correlation rule",
                ["rule_id"],
                registry=r,
            ),
            correlation_events_not_counted=Gauge(
                "canhgac_collector_correlation_events_not_counted",
                "Events a correlation could not count since its rules were loaded, by rule and "
                "reason: evicted (group dropped at max_groups), late (older than the window), "
                "ungrouped (a group-by field missing), suppressed (inside a window that "
                "already alerted)",
                ["rule_id", "reason"],
                registry=r,
            ),
            findings=Gauge(
                "canhgac_collector_findings",
                "Compliance findings now, by code, severity and outcome (violation or "
                "cannot_be_judged); `canhgac-collector findings` lists them with their basis",
                ["code", "severity", "outcome"],
                registry=r,
            ),
            alerts_suppressed=Counter(
                "canhgac_collector_alerts_suppressed",
                "Alerts not stored because the same alert was stored within the suppression "
                "window, by rule",
                ["rule_id"],
                registry=r,
            ),
        )

    def observe_engine(self, stats: EngineStats) -> None:
        """Set the detection engine's gauges from its latest account of itself."""
        self.rules_loaded.set(stats.rules)
        for rule, c in stats.correlations.items():
            self.correlation_groups.labels(rule_id=rule).set(c.groups)
            for reason, n in (
                ("evicted", c.evictions),
                ("late", c.late),
                ("ungrouped", c.ungrouped),
                ("suppressed", c.suppressed),
            ):
                self.correlation_events_not_counted.labels(rule_id=rule, reason=reason).set(n)
