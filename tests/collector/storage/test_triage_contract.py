"""The TriageStore contract (collector/triage/model.py), run against every backend."""

from __future__ import annotations

from typing import Any

import pytest

from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2
from collector.audit.model import verify_chain
from collector.storage.base import Store, StoredAlert
from collector.triage.model import (
    MAX_SUPPRESSION_NS,
    STATUS_AFTER,
    TRIAGE_ACTIONS,
    AlertQuery,
    TriageAction,
    TriageError,
)
from tests.collector.storage.conftest import Backend

T0 = 1_732_000_000_000_000_000
HOUR = 3600 * 10**9


def make_alert(
    alert_id: str,
    *,
    rule_id: str = "ssh-brute-force",
    host: str = "web-01",
    system_id: str = "portal",
    severity: alert_pb2.Severity.ValueType = alert_pb2.SEVERITY_HIGH,
    incident_id: str = "",
) -> alert_pb2.Alert:
    return alert_pb2.Alert(
        id=alert_id,
        rule_id=rule_id,
        severity=severity,
        created_ns=T0,
        agent_id=host,
        host=host,
        system_id=system_id,
        incident_id=incident_id,
    )


def ids(alerts: list[StoredAlert]) -> list[str]:
    return [a.alert.id for a in alerts]


def nothing_written(store: Store, alert_id: str) -> bool:
    stored = store.get_alert(alert_id)
    return (
        stored is not None
        and stored.status == "open"
        and stored.updated_ns == 0
        and store.triage_history(alert_id) == []
        and store.last_audit_record() is None
        and store.active_suppressions(0) == []
    )


@pytest.mark.parametrize("action", TRIAGE_ACTIONS)
def test_every_action_updates_the_alert_its_history_and_the_audit_log(
    store: Store, action: TriageAction
) -> None:
    store.insert_alert(make_alert("a1"))
    options: dict[str, dict[str, Any]] = {
        "assign": {"assignee": "lan"},
        "suppress": {"until_ns": T0 + HOUR},
    }
    after = store.triage_alert(
        "a1", action, actor="minh", at_ns=T0, comment="seen", **options.get(action, {})
    )
    expected = STATUS_AFTER[action] or "open"
    assert after is not None
    assert (after.status, after.updated_ns) == (expected, T0)
    assert after.assignee == ("lan" if action == "assign" else "")
    assert store.get_alert("a1") == after
    (entry,) = store.triage_history("a1")
    assert (entry.action, entry.actor, entry.status_after, entry.comment) == (
        action,
        "minh",
        expected,
        "seen",
    )
    record = store.last_audit_record()
    assert record is not None
    assert (record.actor, record.action, record.target) == ("minh", f"alert.{action}", "a1")
    assert record.detail["status_after"] == expected
    suppressions = store.active_suppressions(T0)
    if action == "suppress":
        (s,) = suppressions
        assert (s.rule_id, s.host, s.system_id, s.until_ns) == (
            "ssh-brute-force",
            "web-01",
            "portal",
            T0 + HOUR,
        )
        assert (s.actor, s.source_alert_id) == ("minh", "a1")
        assert entry.until_ns == T0 + HOUR
    else:
        assert suppressions == []


def test_history_is_oldest_first_and_assignee_is_kept(store: Store) -> None:
    store.insert_alert(make_alert("a1"))
    store.triage_alert("a1", "assign", actor="minh", at_ns=T0, assignee="lan")
    store.triage_alert("a1", "acknowledge", actor="lan", at_ns=T0 + 1)
    store.triage_alert("a1", "resolve", actor="lan", at_ns=T0 + 2, comment="patched")
    store.triage_alert("a1", "reopen", actor="minh", at_ns=T0 + 3)
    history = store.triage_history("a1")
    assert [e.action for e in history] == ["assign", "acknowledge", "resolve", "reopen"]
    assert [e.status_after for e in history] == ["open", "acknowledged", "resolved", "open"]
    stored = store.get_alert("a1")
    assert stored is not None
    assert (stored.status, stored.assignee, stored.updated_ns) == ("open", "lan", T0 + 3)
    assert verify_chain(store.audit_records()).checked == 4


def test_an_unknown_alert_gives_none_and_writes_nothing(store: Store) -> None:
    assert store.triage_alert("nope", "acknowledge", actor="minh", at_ns=T0) is None
    assert store.triage_history("nope") == []
    assert store.last_audit_record() is None


@pytest.mark.parametrize(
    ("action", "options", "message"),
    [
        ("delete", {}, "unknown triage action"),
        ("assign", {}, "needs an assignee"),
        ("assign", {"assignee": "  "}, "needs an assignee"),
        ("suppress", {}, "future"),
        ("suppress", {"until_ns": T0}, "future"),
        ("suppress", {"until_ns": T0 + MAX_SUPPRESSION_NS + 1}, "30 days"),
        ("comment", {"comment": "x" * 4001}, "at most 4000"),
        ("comment", {"comment": "a\x00b"}, "NUL"),
    ],
)
def test_refused_actions_leave_nothing_written(
    store: Store, action: Any, options: dict[str, Any], message: str
) -> None:
    store.insert_alert(make_alert("a1"))
    with pytest.raises(TriageError, match=message) as caught:
        store.triage_alert("a1", action, actor="minh", at_ns=T0, **options)
    assert caught.value.location == "a1"
    assert nothing_written(store, "a1")


def test_a_failing_audit_append_rolls_the_action_back(backend: Backend, store: Store) -> None:
    store.insert_alert(make_alert("a1"))
    # The database refuses the audit record, the last write of the action: all of it must go.
    if backend.kind == "sqlite":
        backend.run_script(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END;"
        )
    else:
        backend.run_script(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'refused'; END $$; "
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION refuse();"
        )
    with pytest.raises(StorageError, match="refused"):
        store.triage_alert("a1", "suppress", actor="minh", at_ns=T0, until_ns=T0 + HOUR)
    assert nothing_written(store, "a1")


def _seed(store: Store) -> None:
    store.insert_alerts(
        [
            make_alert("p1", severity=alert_pb2.SEVERITY_LOW),
            make_alert("p2", host="web-02"),
            make_alert("m1", system_id="mail", rule_id="port-scan", host="mx"),
            make_alert("p3", severity=alert_pb2.SEVERITY_CRITICAL),
            make_alert("x1", system_id=""),
            make_alert("m2", system_id="mail", host="mx"),
        ]
    )


def test_query_filters(store: Store) -> None:
    _seed(store)
    store.triage_alert("p2", "acknowledge", actor="minh", at_ns=T0)

    def q(**kw: Any) -> list[str]:
        return ids(store.query_alerts(AlertQuery(**kw)))

    assert q() == ["m2", "x1", "p3", "m1", "p2", "p1"]
    assert q(min_severity=alert_pb2.SEVERITY_CRITICAL) == ["p3"]
    assert q(system_id="mail") == ["m2", "m1"]
    assert q(rule_id="port-scan") == ["m1"]
    assert q(status="acknowledged") == ["p2"]
    assert q(status="open", host="mx") == ["m2", "m1"]
    assert q(host="web-02") == ["p2"]
    assert q(system_id="portal", min_severity=alert_pb2.SEVERITY_HIGH) == ["p3", "p2"]


def test_query_scope(store: Store) -> None:
    _seed(store)

    def q(**kw: Any) -> list[str]:
        return ids(store.query_alerts(AlertQuery(**kw)))

    assert q(systems=frozenset()) == []
    assert q(systems=frozenset({"mail"})) == ["m2", "m1"]
    assert q(systems=frozenset({"mail", "portal"})) == ["m2", "p3", "m1", "p2", "p1"]
    # A system filter outside the caller's scope finds nothing.
    assert q(systems=frozenset({"mail"}), system_id="portal") == []


def test_query_cursors(store: Store) -> None:
    _seed(store)
    every = store.query_alerts(AlertQuery())
    rows = [a.row_id for a in every]
    assert rows == sorted(rows, reverse=True)

    pages, before = [], None
    while page := store.query_alerts(AlertQuery(before_row=before, limit=4)):
        pages.append(ids(page))
        before = page[-1].row_id
    assert pages == [["m2", "x1", "p3", "m1"], ["p2", "p1"]]

    pulled = store.query_alerts(AlertQuery(after_row=every[3].row_id, limit=2))
    assert ids(pulled) == ["p3", "x1"]  # oldest first
    # after_row wins over before_row.
    both = store.query_alerts(AlertQuery(after_row=every[1].row_id, before_row=1))
    assert ids(both) == ["m2"]
    # Cursors beyond BIGINT (from a URL) compare like the largest one, not an error.
    assert len(store.query_alerts(AlertQuery(before_row=2**70))) == 6
    assert store.query_alerts(AlertQuery(after_row=2**70)) == []


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_query_limit_is_checked(store: Store, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.query_alerts(AlertQuery(limit=limit))


def test_query_limit_bounds_are_accepted(store: Store) -> None:
    _seed(store)
    assert len(store.query_alerts(AlertQuery(limit=1))) == 1
    assert len(store.query_alerts(AlertQuery(limit=1000))) == 6


def test_related_alerts_by_incident_then_rule_and_host(store: Store) -> None:
    store.insert_alerts(
        [
            make_alert("i1", incident_id="inc-1"),
            make_alert("i2", incident_id="inc-1", rule_id="other", host="db"),
            make_alert("r1"),
            make_alert("r2"),
            make_alert("o1", host="web-09"),
        ]
    )
    for alert_id in ("i1", "i2"):
        stored = store.get_alert(alert_id)
        assert stored is not None
        store.open_or_attach(stored.alert, at_ns=T0)
    assert ids(store.related_alerts("i1")) == ["i2"]
    assert ids(store.related_alerts("r1")) == ["r2", "i1"]
    assert ids(store.related_alerts("r1", limit=1)) == ["r2"]
    assert store.related_alerts("o1") == []
    assert store.related_alerts("unknown") == []


def test_a_suppression_covers_new_alerts_until_it_ends(store: Store) -> None:
    store.insert_alerts([make_alert("a1"), make_alert("other", host="web-02")])
    store.triage_alert("a1", "suppress", actor="minh", at_ns=T0, until_ns=T0 + HOUR)
    (suppression,) = store.active_suppressions(T0 + 1)
    store.insert_alerts([make_alert("a2"), make_alert("b1", host="web-02")])
    assert store.apply_suppressions(["a2", "b1", "unknown"], T0 + 10) == ["a2"]
    a2 = store.get_alert("a2")
    assert a2 is not None
    assert (a2.status, a2.updated_ns) == ("suppressed", T0 + 10)
    (entry,) = store.triage_history("a2")
    assert entry.actor == f"suppression:{suppression.suppression_id}"
    assert (entry.action, entry.until_ns) == ("suppress", T0 + HOUR)
    b1 = store.get_alert("b1")
    assert b1 is not None
    assert b1.status == "open"
    # Applying again changes nothing: only open alerts are suppressed.
    assert store.apply_suppressions(["a2"], T0 + 11) == []

    store.insert_alert(make_alert("a3"))
    assert store.active_suppressions(T0 + HOUR) == []
    assert store.apply_suppressions(["a3"], T0 + HOUR) == []
    a3 = store.get_alert("a3")
    assert a3 is not None
    assert a3.status == "open"


def test_a_suppression_is_per_system(store: Store) -> None:
    store.insert_alert(make_alert("a1"))
    store.triage_alert("a1", "suppress", actor="minh", at_ns=T0, until_ns=T0 + HOUR)
    store.insert_alert(make_alert("a2", system_id="mail"))
    assert store.apply_suppressions(["a2"], T0 + 1) == []
