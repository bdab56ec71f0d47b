"""The collector's instrumentation, following the contract in ARCHITECTURE.md (decision 11).

Every stage counts what it received and sent, its errors by bounded `error_type` and `stage`,
and what it discarded (with `intentional`). Labels never carry per-event or per-address values;
`agent` labels are not used either (agent health is in the registry, not in label sets).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from collector.detection.control import EngineStats


# The label that names an information system (a dossier's id); see `ScopedMetrics`.
SYSTEM_LABEL: Final = "system"


class ScopedMetrics:
    """A registry's metrics as a principal with a contracted scope may see them: a sample
    labelled with an information system outside `systems` is left out (a SOC contracted for
    some systems must not learn the alert counts of the others); samples without a system
    label, the collector's own health, are kept. A family all of whose samples are left out is
    still described (HELP and TYPE), so the exposition's shape does not depend on the scope."""

    def __init__(self, registry: CollectorRegistry, systems: frozenset[str]) -> None:
        self._registry = registry
        self._systems = systems

    def collect(self) -> Iterable[Metric]:
        """The registry's families, each with the samples the scope allows (what
        `prometheus_client.generate_latest` reads)."""
        systems = self._systems
        for family in self._registry.collect():
            kept = [
                s
                for s in family.samples
                if SYSTEM_LABEL not in s.labels or s.labels[SYSTEM_LABEL] in systems
            ]
            if len(kept) == len(family.samples):
                yield family
                continue
            scoped = Metric(family.name, family.documentation, family.type, family.unit)
            scoped.samples = kept
            yield scoped


@dataclass(frozen=True)
class ForwardMetrics:
    """Upstream forwarding (collector/forward), labelled by destination name (from the
    configuration, so bounded) and failure reason (a short fixed vocabulary)."""

    backlog: Gauge
    oldest_pending_seconds: Gauge
    delivered: Counter
    failures: Counter
    quarantined: Gauge
    last_success: Gauge

    @classmethod
    def create(cls, r: CollectorRegistry) -> ForwardMetrics:
        return cls(
            backlog=Gauge(
                "canhgac_collector_forward_backlog",
                "Items waiting to be delivered, by destination",
                ["destination"],
                registry=r,
            ),
            oldest_pending_seconds=Gauge(
                "canhgac_collector_forward_oldest_pending_seconds",
                "Age of the oldest item not yet delivered (0 when none), by destination",
                ["destination"],
                registry=r,
            ),
            delivered=Counter(
                "canhgac_collector_forward_delivered",
                "Items the destination accepted, by destination",
                ["destination"],
                registry=r,
            ),
            failures=Counter(
                "canhgac_collector_forward_failures",
                "Failed delivery attempts, by destination and reason (timeout, refused, tls, "
                "http_4xx, http_5xx, invalid, missing, partial, error)",
                ["destination", "reason"],
                registry=r,
            ),
            quarantined=Gauge(
                "canhgac_collector_forward_quarantined",
                "Items given up on until an operator retries them, by destination",
                ["destination"],
                registry=r,
            ),
            last_success=Gauge(
                "canhgac_collector_forward_last_success_timestamp_seconds",
                "When the destination last accepted an item (Unix time; 0: never)",
                ["destination"],
                registry=r,
            ),
        )


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
    alerts_stored_suppressed: Counter
    findings: Gauge
    http_refused: Counter
    console_clients: Gauge
    console_dropped: Counter
    forward: ForwardMetrics

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
                "Alerts raised, by rule, severity and information system (system ids come from "
                "the dossier registry, a bounded set; 'unassigned' for hosts in no system)",
                ["rule_id", "severity", SYSTEM_LABEL],
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
            alerts_stored_suppressed=Counter(
                "canhgac_collector_alerts_stored_suppressed",
                "Alerts stored with status suppressed instead of open, by rule and reason "
                "(operator_suppression: an operator suppressed the rule on that host)",
                ["rule_id", "reason"],
                registry=r,
            ),
            http_refused=Counter(
                "canhgac_collector_http_refused",
                "REST API requests refused, by reason (rate_limited, bad_request, not_found)",
                ["reason"],
                registry=r,
            ),
            console_clients=Gauge(
                "canhgac_collector_console_live_clients",
                "Console pages connected to the live alert stream (server-sent events)",
                registry=r,
            ),
            console_dropped=Counter(
                "canhgac_collector_console_live_dropped",
                "Live alerts not pushed to a console page, by reason: queue_full (the page "
                "was slow and is told to reload), closed (the page had gone)",
                ["reason"],
                registry=r,
            ),
            forward=ForwardMetrics.create(r),
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
