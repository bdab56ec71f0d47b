"""Between engine and store: severity by the system's level, suppression, incident grouping."""

from __future__ import annotations

from canhgac.v1 import alert_pb2
from collector.detection.enrich import (
    NS,
    AlertEnricher,
    IncidentGrouper,
    Suppressor,
    raise_severity,
)

T0 = 1_795_350_000 * NS


def alert(
    rule: str = "r1",
    agent: str = "web-01",
    at_s: int = 0,
    category: str = "unauthorized_access",
    severity: alert_pb2.Severity.ValueType = alert_pb2.SEVERITY_HIGH,
    group: dict[str, str] | None = None,
) -> alert_pb2.Alert:
    group = group or {}
    t = T0 + at_s * NS
    return alert_pb2.Alert(
        id=f"{rule}-{agent}-{at_s}",
        rule_id=rule,
        agent_id=agent,
        first_seen_ns=t,
        last_seen_ns=t,
        created_ns=t,
        category=category,
        severity=severity,
        group=group,
        summary=f"{rule} on {agent} {sorted(group.items())}",
    )


def test_suppressor_lets_one_through_per_window_and_key() -> None:
    s = Suppressor(window_ns=600 * NS)
    assert not s.duplicate(alert(at_s=0, group={"source.ip": "203.0.113.7"}))
    assert s.duplicate(alert(at_s=300, group={"source.ip": "203.0.113.7"}))
    assert not s.duplicate(alert(at_s=300, group={"source.ip": "203.0.113.8"}))  # another group
    assert not s.duplicate(alert(rule="r2", at_s=300, group={"source.ip": "203.0.113.7"}))
    assert not s.duplicate(alert(agent="db-01", at_s=300, group={"source.ip": "203.0.113.7"}))
    assert not s.duplicate(alert(at_s=601, group={"source.ip": "203.0.113.7"}))  # window over


def test_suppressor_off_and_bounded() -> None:
    off = Suppressor(window_ns=0)
    assert not off.duplicate(alert())
    assert not off.duplicate(alert())
    small = Suppressor(window_ns=600 * NS, max_keys=2)
    for ip in ("a", "b", "c"):
        small.duplicate(alert(group={"source.ip": ip}))
    # "a" was forgotten (least recently used), so it passes again: bounded, never blocking.
    assert not small.duplicate(alert(group={"source.ip": "a"}))
    assert small.duplicate(alert(group={"source.ip": "c"}))


def test_incidents_group_by_system_and_category_within_the_window() -> None:
    ids = iter(f"inc-{i}" for i in range(100))
    g = IncidentGrouper(window_ns=3600 * NS, new_incident_id=lambda _t: next(ids))
    a, b, c, d, e = (
        alert(at_s=0),
        alert(rule="r2", at_s=1800),
        alert(at_s=1900, category="malware"),
        alert(agent="db-01", at_s=2000),
        alert(rule="r3", at_s=1800 + 3601),
    )
    for x in (a, b, c, d, e):
        g.assign(x)
    assert a.incident_id == b.incident_id == "inc-0"
    assert c.incident_id == "inc-1"  # another category
    assert d.incident_id == "inc-2"  # another host, no system
    assert e.incident_id == "inc-3"  # more than an hour after the incident's last alert
    # Two hosts of one information system are one incident.
    f, h = alert(agent="web-01", at_s=9000), alert(agent="web-02", at_s=9100)
    f.system_id = h.system_id = "portal"
    g.assign(f)
    g.assign(h)
    assert f.incident_id == h.incident_id


def test_raise_severity_caps_at_critical() -> None:
    assert raise_severity(alert_pb2.SEVERITY_HIGH, 1) == alert_pb2.SEVERITY_CRITICAL
    assert raise_severity(alert_pb2.SEVERITY_CRITICAL, 2) == alert_pb2.SEVERITY_CRITICAL
    assert raise_severity(alert_pb2.SEVERITY_LOW, 0) == alert_pb2.SEVERITY_LOW
    assert raise_severity(alert_pb2.SEVERITY_UNSPECIFIED, 1) == alert_pb2.SEVERITY_UNSPECIFIED


async def test_enricher_sets_system_and_level_raises_severity_suppresses_and_groups() -> None:
    lookups: list[str] = []

    async def system_of(agent_id: str) -> tuple[str, int]:
        lookups.append(agent_id)
        return {"web-01": ("portal", 4), "db-01": ("hr", 2)}.get(agent_id, ("", 0))

    suppressed: list[str] = []
    enrich = AlertEnricher(
        system_of=system_of,
        level_raise={4: 1, 5: 1},
        suppressor=Suppressor(600 * NS),
        incidents=IncidentGrouper(3600 * NS),
        on_suppressed=lambda a: suppressed.append(a.rule_id),
        monotonic=lambda: 0.0,
    )
    out = await enrich(
        [
            alert(severity=alert_pb2.SEVERITY_MEDIUM),
            alert(at_s=10, severity=alert_pb2.SEVERITY_MEDIUM),  # the same alert again
            alert(agent="db-01", severity=alert_pb2.SEVERITY_MEDIUM),
            alert(agent="lab-01", severity=alert_pb2.SEVERITY_MEDIUM),
        ]
    )
    assert [(a.agent_id, a.system_id, a.system_level) for a in out] == [
        ("web-01", "portal", 4),
        ("db-01", "hr", 2),
        ("lab-01", "", 0),
    ]
    assert [a.severity for a in out] == [
        alert_pb2.SEVERITY_HIGH,  # raised one step on a level-4 system
        alert_pb2.SEVERITY_MEDIUM,
        alert_pb2.SEVERITY_MEDIUM,
    ]
    assert suppressed == ["r1"]
    assert all(a.incident_id for a in out)
    assert len({a.incident_id for a in out}) == 3
    assert lookups == ["web-01", "db-01", "lab-01"]  # web-01 asked once, then cached
