"""The outbox contract (collector/forward/store.py) on every backend.

Runs on SQLite and PostgreSQL through the storage contract fixture: enqueue in the same
transaction as the alert or incident, idempotent enqueue, due order, backoff fields,
quarantine, retry and health.
"""

from __future__ import annotations

import pytest

from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2
from collector.forward.model import OutboxItem
from collector.storage.base import Store
from tests.collector.storage.conftest import Backend

T0 = 1_790_000_000_000_000_000
DESTS = ("national", "soc")

# Makes the database refuse one alert, so atomicity is shown on a real failed insert.
_POISON_ALERT = {
    "sqlite": """
        CREATE TRIGGER poison_alert BEFORE INSERT ON alerts WHEN NEW.alert_id = 'poison'
        BEGIN SELECT RAISE(ABORT, 'poisoned alert'); END;
    """,
    "postgres": """
        CREATE FUNCTION poison_alert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.alert_id = 'poison' THEN RAISE EXCEPTION 'poisoned alert'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison_alert BEFORE INSERT ON alerts
            FOR EACH ROW EXECUTE FUNCTION poison_alert();
    """,
}


def alert(alert_id: str, incident_id: str = "") -> alert_pb2.Alert:
    return alert_pb2.Alert(
        id=alert_id,
        rule_id="ssh-brute-force",
        rule_title="SSH brute force",
        severity=alert_pb2.SEVERITY_HIGH,
        created_ns=T0,
        first_seen_ns=T0,
        agent_id="web-01",
        host="web-01",
        system_id="portal",
        summary="brute force",
        incident_id=incident_id,
        category="unauthorized_access",
    )


def ids(items: list[OutboxItem]) -> list[str]:
    return [i.item_id for i in items]


def test_new_alerts_are_queued_for_every_destination_in_their_transaction(store: Store) -> None:
    assert store.insert_alerts([alert("a1"), alert("a2")], outbox=DESTS) == [True, True]
    # A repeated alert is not new: it is not queued again.
    assert store.insert_alerts([alert("a1"), alert("a3")], outbox=DESTS) == [False, True]
    for dest in DESTS:
        due = store.due_items(dest, T0 * 2, 10)
        assert sorted(ids(due)) == ["a1", "a2", "a3"]
        assert {(i.kind, i.state, i.attempts) for i in due} == {("alert", "pending", 0)}
    assert store.due_items("other", T0 * 2, 10) == []


def test_alerts_without_destinations_queue_nothing(store: Store) -> None:
    store.insert_alerts([alert("a1")])
    assert store.outbox_items() == []


def test_a_failed_insert_leaves_no_outbox_row(backend: Backend) -> None:
    s = backend.open_store()
    s.migrate()
    backend.run_script(_POISON_ALERT[backend.kind])
    with pytest.raises(StorageError):
        s.insert_alerts([alert("a1"), alert("poison")], outbox=DESTS)
    assert s.get_alert("a1") is None
    assert s.outbox_items() == []
    assert backend.query("SELECT COUNT(*) FROM outbox") == [(0,)]


def test_a_new_incident_is_queued_once(store: Store) -> None:
    store.insert_alerts([alert("a1", "INC-1"), alert("a2", "INC-1")])
    _, opened = store.open_or_attach(alert("a1", "INC-1"), at_ns=T0, outbox=DESTS)
    assert opened
    _, opened = store.open_or_attach(alert("a2", "INC-1"), at_ns=T0 + 1, outbox=DESTS)
    assert not opened
    items = store.outbox_items(destination="national")
    assert [(i.kind, i.item_id, i.created_ns) for i in items] == [("incident", "INC-1", T0)]


def test_enqueue_is_idempotent(store: Store) -> None:
    assert store.enqueue(DESTS, "alert", ["x", "y", "x"], at_ns=T0) == 4
    assert store.enqueue(DESTS, "alert", ["x", "z"], at_ns=T0 + 5) == 2
    assert len(store.outbox_items(limit=100)) == 6
    with pytest.raises(ValueError, match="kind"):
        store.enqueue(DESTS, "event", ["x"], at_ns=T0)  # type: ignore[arg-type]  # refused


def test_due_items_come_oldest_first_and_respect_the_due_time(store: Store) -> None:
    store.enqueue(["national"], "alert", ["b"], at_ns=T0 + 2)
    store.enqueue(["national"], "alert", ["a"], at_ns=T0 + 1)
    store.enqueue(["national"], "incident", ["c"], at_ns=T0 + 3)
    assert ids(store.due_items("national", T0, 10)) == ["a", "b", "c"]
    assert ids(store.due_items("national", T0, 2)) == ["a", "b"]
    store.mark_failed(
        "national",
        "alert",
        ["a"],
        error="timeout: slow",
        next_attempt_ns=T0 + 100,
        max_attempts=5,
    )
    assert ids(store.due_items("national", T0 + 99, 10)) == ["b", "c"]
    assert ids(store.due_items("national", T0 + 100, 10)) == ["b", "c", "a"]
    with pytest.raises(ValueError, match="limit"):
        store.due_items("national", T0, 0)


def test_failures_count_attempts_and_quarantine_at_the_limit(store: Store) -> None:
    store.enqueue(["national"], "alert", ["a", "b"], at_ns=T0)
    for n in (1, 2):
        quarantined = store.mark_failed(
            "national",
            "alert",
            ["a"],
            error=f"http_5xx: try {n}",
            next_attempt_ns=T0 + n,
            max_attempts=3,
        )
        assert quarantined == []
    (item,) = [i for i in store.outbox_items() if i.item_id == "a"]
    assert (item.state, item.attempts, item.next_attempt_ns) == ("pending", 2, T0 + 2)
    assert item.last_error == "http_5xx: try 2"
    quarantined = store.mark_failed(
        "national",
        "alert",
        ["a"],
        error="http_5xx: try 3",
        next_attempt_ns=T0 + 3,
        max_attempts=3,
    )
    assert quarantined == ["a"]
    assert ids(store.due_items("national", T0 * 2, 10)) == ["b"]
    assert ids(store.outbox_items(state="quarantined")) == ["a"]
    # A permanent error quarantines at once.
    assert store.mark_failed(
        "national",
        "alert",
        ["b"],
        error="http_4xx: 422",
        next_attempt_ns=T0,
        max_attempts=20,
        permanent=True,
    ) == ["b"]
    assert store.due_items("national", T0 * 2, 10) == []


def test_an_error_text_is_bounded(store: Store) -> None:
    store.enqueue(["national"], "alert", ["a"], at_ns=T0)
    store.mark_failed(
        "national", "alert", ["a"], error="x" * 10_000, next_attempt_ns=T0, max_attempts=5
    )
    assert len(store.outbox_items()[0].last_error) == 500


def test_delivered_items_leave_the_queue(store: Store) -> None:
    store.enqueue(DESTS, "alert", ["a", "b"], at_ns=T0)
    store.mark_delivered("national", "alert", ["a"], T0 + 10)
    assert ids(store.due_items("national", T0 * 2, 10)) == ["b"]
    assert ids(store.due_items("soc", T0 * 2, 10)) == ["a", "b"]
    (a,) = store.outbox_items(destination="national", state="delivered")
    assert (a.item_id, a.delivered_ns) == ("a", T0 + 10)
    # A late failure report for a delivered item does not undo the delivery.
    store.mark_failed(
        "national", "alert", ["a"], error="timeout: x", next_attempt_ns=0, max_attempts=1
    )
    assert store.outbox_items(destination="national", state="delivered")[0].item_id == "a"


def test_an_operator_retries_a_quarantined_item(store: Store) -> None:
    store.enqueue(["national"], "alert", ["a"], at_ns=T0)
    assert not store.retry_quarantined("national", "alert", "a", T0)  # not quarantined
    store.mark_failed(
        "national",
        "alert",
        ["a"],
        error="http_4xx: 400",
        next_attempt_ns=T0,
        max_attempts=20,
        permanent=True,
    )
    assert store.retry_quarantined("national", "alert", "a", T0 + 7)
    (item,) = store.outbox_items()
    assert (item.state, item.attempts, item.next_attempt_ns) == ("pending", 0, T0 + 7)
    assert item.last_error == "http_4xx: 400"  # kept until the next attempt
    assert not store.retry_quarantined("national", "alert", "missing", T0)


def test_health_counts_backlog_quarantine_age_and_failures(store: Store) -> None:
    empty = store.outbox_health("national")
    assert (empty.backlog, empty.quarantined, empty.oldest_pending_ns) == (0, 0, 0)
    assert (empty.last_success_ns, empty.failures_by_reason) == (0, {})
    store.enqueue(["national"], "alert", ["a", "b", "c", "d"], at_ns=T0)
    store.enqueue(["national"], "alert", ["e"], at_ns=T0 - 5)
    store.mark_delivered("national", "alert", ["e"], T0 + 50)
    store.mark_failed(
        "national", "alert", ["a", "b"], error="timeout: read", next_attempt_ns=T0, max_attempts=5
    )
    store.mark_failed(
        "national",
        "alert",
        ["c"],
        error="http_4xx: 422",
        next_attempt_ns=T0,
        max_attempts=5,
        permanent=True,
    )
    h = store.outbox_health("national")
    assert (h.backlog, h.quarantined, h.oldest_pending_ns, h.last_success_ns) == (3, 1, T0, T0 + 50)
    assert h.failures_by_reason == {"timeout": 2, "http_4xx": 1}
    assert store.outbox_health("soc").backlog == 0
