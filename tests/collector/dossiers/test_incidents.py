"""Incidents: the model, its legal clocks, and the IncidentStore contract on every backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from canhgac.v1 import alert_pb2
from collector.dossiers.clock import VN_TZ
from collector.dossiers.incidents import (
    Incident,
    IncidentError,
    ReportLogEntry,
    SentReport,
    incident_from_alert,
)
from collector.dossiers.regime import load_regimes
from collector.storage.base import Store
from tests.collector.storage import conftest as storage
from tests.collector.storage.conftest import Backend

backend = storage.backend
postgres_server = storage.postgres_server
postgres_dsn = storage.postgres_dsn
store = storage.store

REGIMES = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes")
NEW = REGIMES.select("vn-2026")
LEGACY = REGIMES.select("vn-legacy-2016")
DETECTED = dt.datetime(2026, 9, 10, 8, 30, tzinfo=VN_TZ)
T0 = 1_780_000_000_000_000_000


def incident(incident_id: str = "01JINC0000000000000000000A", **changes: Any) -> Incident:
    data: dict[str, Any] = {
        "id": incident_id,
        "system_id": "dvc-portal",
        "detected_at": DETECTED,
        "category": "defacement",
    }
    data.update(changes)
    return Incident.model_validate(data)


def alert(alert_id: str, incident_id: str = "INC-1", **changes: Any) -> alert_pb2.Alert:
    fields: dict[str, Any] = {
        "id": alert_id,
        "rule_id": "web-deface",
        "rule_title": "Thay đổi giao diện trang chủ",
        "severity": alert_pb2.SEVERITY_HIGH,
        "created_ns": T0 + 5_000_000_000,
        "first_seen_ns": T0,
        "system_id": "dvc-portal",
        "system_level": 3,
        "category": "defacement",
        "summary": "index.html changed",
        "incident_id": incident_id,
    }
    fields.update(changes)
    return alert_pb2.Alert(**fields)


# --- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", ["10.0.0.5", "192.168.1.1", "127.0.0.1", "fd00::1", "100.64.0.1"])
def test_internal_addresses_are_refused_in_public_ips(ip: str) -> None:
    with pytest.raises(ValidationError, match="not a public address"):
        incident(public_ips=[ip])


def test_public_addresses_and_domains_are_normalized() -> None:
    i = incident(public_ips=[" 8.8.8.8"], domains=["DVC.Example.VN."])
    assert i.public_ips == ("8.8.8.8",)
    assert i.domains == ("dvc.example.vn",)


def test_model_refuses_unknown_keys_naive_times_and_missing_details() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        incident(colour="red")
    with pytest.raises(ValidationError, match="timezone"):
        incident(detected_at=dt.datetime(2026, 9, 10, 8, 30))
    with pytest.raises(ValidationError, match="detail: required"):
        incident(detection_methods=[{"kind": "notified_by"}])
    with pytest.raises(ValidationError, match="listed once"):
        incident(services=["web", "web"])


def test_category_is_checked_against_the_regime() -> None:
    assert incident().check_regime(NEW) == []
    assert "not one of" in incident(category="aliens").check_regime(NEW)[0]


def test_a_serious_incident_has_a_24h_notice_and_a_72h_report_in_vietnam_time() -> None:
    i = incident(severity="serious", detected_at=dt.datetime(2026, 9, 10, 1, 30, tzinfo=dt.UTC))
    clocks = i.deadlines(NEW, now=dt.datetime(2026, 9, 10, 12, 0, tzinfo=VN_TZ))
    assert [(c.deadline.id, c.due.isoformat(), c.state) for c in clocks] == [
        ("initial-notice-24h", "2026-09-11T08:30:00+07:00", "due"),
        ("report-72h", "2026-09-13T08:30:00+07:00", "due"),
    ]


def test_clock_states_follow_the_reports_sent() -> None:
    notice = SentReport(kind="notice", sent_at=DETECTED + dt.timedelta(hours=20))
    late_report = SentReport(kind="final", sent_at=DETECTED + dt.timedelta(hours=80))
    i = incident(severity="serious", personal_data_breach=True, reports=[notice, late_report])
    clocks = i.deadlines(NEW, now=DETECTED + dt.timedelta(days=5))
    assert {c.deadline.id: c.state for c in clocks} == {
        "initial-notice-24h": "met",
        "report-72h": "missed",  # the first report came at 80 h
        "personal-data-breach-72h": "missed",  # nothing sent to the data authority
    }
    assert clocks[0].sent_at == notice.sent_at


def test_an_immediate_duty_stays_due_until_a_notice_is_sent() -> None:
    i = incident(severity="national_security_or_major_disruption")
    later = DETECTED + dt.timedelta(hours=1)
    assert i.deadlines(NEW, now=later)[0].state == "due"
    assert i.deadlines(NEW, now=later)[0].immediate
    sent = i.model_copy(update={"reports": (SentReport(kind="notice", sent_at=later),)})
    assert sent.deadlines(NEW, now=later)[0].state == "met"


def test_legacy_regime_counts_its_own_clock() -> None:
    clocks = incident().deadlines(LEGACY, now=DETECTED)
    assert clocks
    assert all(c.due > DETECTED for c in clocks)


def test_the_first_alert_opens_the_incident_detected_at_its_first_event() -> None:
    i = incident_from_alert(alert("A1"))
    assert i.id == "INC-1"
    assert i.detected_at == dt.datetime.fromtimestamp(T0 / 1e9, VN_TZ)
    assert (i.system_level, i.category, i.alert_ids) == (3, "defacement", ("A1",))


# --- store -----------------------------------------------------------------------------------


def test_incidents_are_created_read_updated_and_listed(store: Store) -> None:
    first = incident("B", detected_at=DETECTED + dt.timedelta(hours=1), alert_ids=["X1"])
    assert store.create_incident(first, at_ns=T0) is True
    assert store.create_incident(first, at_ns=T0) is False
    store.create_incident(incident("A", system_id="other"), at_ns=T0)
    assert store.get_incident("B") == first
    assert store.get_incident("nope") is None
    assert [i.id for i in store.list_incidents()] == ["A", "B"]
    assert [i.id for i in store.list_incidents(system_id="dvc-portal")] == ["B"]
    window = store.list_incidents(
        detected_from=DETECTED + dt.timedelta(minutes=1),
        detected_before=DETECTED + dt.timedelta(hours=2),
    )
    assert [i.id for i in window] == ["B"]
    handled = first.model_copy(update={"status": "handled", "alert_ids": ()})
    store.update_incident(handled)
    got = store.get_incident("B")
    assert got is not None
    assert got.status == "handled"
    assert got.alert_ids == ("X1",)  # an edit never drops an attached alert
    with pytest.raises(IncidentError, match="no such incident"):
        store.update_incident(incident("ghost"))


def test_the_queried_columns_follow_the_model(store: Store, backend: Backend) -> None:
    store.create_incident(incident("A", severity="serious"), at_ns=T0)
    rows = backend.query("SELECT incident_id, system_id, category, severity, status FROM incidents")
    assert rows == [("A", "dvc-portal", "defacement", "serious", "not_handled")]


def test_alerts_sharing_an_incident_id_open_one_incident(store: Store) -> None:
    opened, created = store.open_or_attach(alert("A1"), at_ns=T0)
    assert created
    assert opened.alert_ids == ("A1",)
    attached, created = store.open_or_attach(alert("A2", summary="other"), at_ns=T0 + 1)
    assert not created
    assert attached.alert_ids == ("A1", "A2")
    assert attached.description == "index.html changed"  # the first alert's
    again, _ = store.open_or_attach(alert("A2"), at_ns=T0 + 2)
    assert again.alert_ids == ("A1", "A2")
    other, created = store.open_or_attach(alert("B1", incident_id="INC-2"), at_ns=T0 + 3)
    assert created
    assert other.id == "INC-2"
    with pytest.raises(ValueError, match="no incident id"):
        store.open_or_attach(alert("C1", incident_id=""), at_ns=T0)


def test_the_report_log_is_append_only(store: Store, backend: Backend) -> None:
    store.create_incident(incident("A"), at_ns=T0)
    entries = [
        ReportLogEntry(T0, "an", "initial", "html", "vi", "ab" * 32, 2),
        ReportLogEntry(T0 + 1, "bình", "closure", "json", "en", "cd" * 32),
    ]
    for e in entries:
        store.log_report("A", e)
    assert store.report_log("A") == entries
    assert store.report_log("B") == []
    with pytest.raises(IncidentError):
        store.log_report("ghost", entries[0])
    for statement in (
        "UPDATE incident_report_log SET actor = 'x'",
        "DELETE FROM incident_report_log",
    ):
        with pytest.raises(Exception, match="append-only"):
            backend.run_script(statement)
    assert store.report_log("A") == entries


@pytest.mark.parametrize("regime", [NEW, LEGACY], ids=["vn-2026", "vn-legacy-2016"])
def test_incident_deadlines_approaching_and_missed_are_findings(store: Store, regime: Any) -> None:
    from collector.dossiers.incident_findings import incident_findings

    serious = incident(severity="serious", detected_at=DETECTED)
    assert store.create_incident(serious, at_ns=T0)
    soon = DETECTED + dt.timedelta(hours=20)  # within 6 h of a 24 h notice, if the regime has one
    late = DETECTED + dt.timedelta(days=10)  # every duty of either regime has passed
    clocks_soon = serious.deadlines(regime, now=soon)
    found_soon = incident_findings(store, regime, soon)
    expected_soon = {c.deadline.kind for c in clocks_soon if c.due - soon <= dt.timedelta(hours=6)}
    assert {f.data["duty"] for f in found_soon} == expected_soon
    assert all(f.code == "incident_deadline_approaching" for f in found_soon)
    found_late = incident_findings(store, regime, late)
    assert found_late
    assert {f.code for f in found_late} == {"incident_deadline_missed"}
    assert len(found_late) == len(serious.deadlines(regime, now=late))
    assert all(f.basis[0].source and f.basis[0].confidence for f in found_late)
    assert all(f.system_id == "dvc-portal" for f in found_late)
    # A notice and a report sent in time leave nothing to find.
    done = serious.model_copy(
        update={
            "reports": (
                SentReport(kind="notice", sent_at=DETECTED + dt.timedelta(hours=1)),
                SentReport(kind="initial", sent_at=DETECTED + dt.timedelta(hours=2)),
            )
        }
    )
    store.update_incident(done)
    assert incident_findings(store, regime, late) == []
