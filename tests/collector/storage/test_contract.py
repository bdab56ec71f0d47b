"""The Store contract (collector/storage/base.py), run against every backend."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canhgac.errors import MigrationError, StorageError
from canhgac.v1 import alert_pb2, events_pb2
from collector.storage.base import AgentRecord, BatchToStore, Store
from collector.storage.migrations import Migration, load_migrations
from tests.collector.storage.conftest import Backend

T0 = 1_732_000_000_000_000_000


def auth_event(event_id: str, agent_id: str = "web-01", offset: int = 0) -> events_pb2.Event:
    event = events_pb2.Event(
        id=event_id,
        time_ns=T0 + offset,
        agent_id=agent_id,
        host="web-01.tinh.gov.vn",
        category="authentication",
        type="start",
        action="ssh_login_failed",
        outcome=events_pb2.OUTCOME_FAILURE,
        source="authlog",
        original="sshd[811]: Failed password for invalid user admin from 203.0.113.7 port 4711",
        created_ns=T0 + offset + 1_000,
    )
    event.labels["env"] = "prod"
    event.auth.user = "admin"
    event.auth.source_ip = "203.0.113.7"
    event.auth.source_port = 4711
    event.auth.process_name = "sshd"
    event.auth.user_invalid = True
    return event


def events_for(agent_id: str, seq: int, count: int) -> list[events_pb2.Event]:
    return [auth_event(f"{agent_id}-{seq}-{i}", agent_id, i) for i in range(count)]


def alert(alert_id: str, summary: str = "brute force") -> alert_pb2.Alert:
    made = alert_pb2.Alert(
        id=alert_id,
        rule_id="ssh-brute-force",
        rule_title="SSH brute force",
        severity=alert_pb2.SEVERITY_HIGH,
        created_ns=T0,
        agent_id="web-01",
        host="web-01.tinh.gov.vn",
        system_id="portal",
        system_level=3,
        summary=summary,
        event_ids=["e1", "e2"],
    )
    made.group["source.ip"] = "203.0.113.7"
    return made


# --- migrations --------------------------------------------------------------------------


def test_migrate_is_idempotent_and_returns_the_version(backend: Backend) -> None:
    store = backend.open_store()
    assert store.schema_version() == 0
    latest = load_migrations("sqlite")[-1].version
    assert store.migrate() == latest
    assert store.migrate() == latest
    assert backend.open_store().migrate() == latest
    assert store.schema_version() == latest
    assert {"batches", "events", "agents", "alerts", "schema_migrations"} <= backend.tables()


def test_a_newer_schema_is_refused(backend: Backend, store: Store) -> None:
    backend.run_script("INSERT INTO schema_migrations (version, applied_ns) VALUES (99, 0)")
    latest = load_migrations(backend.kind)[-1].version
    with pytest.raises(MigrationError, match=rf"version 99 .* knows versions up to {latest}\b"):
        store.migrate()


def test_a_new_migration_file_is_applied_after_the_others(backend: Backend) -> None:
    known = load_migrations(backend.kind)
    version = len(known) + 1
    extra = Migration(version, f"{version:04d}_notes.sql", "CREATE TABLE notes (note TEXT);\n")
    store = backend.open_store(migrations=[*known, extra], clock=lambda: 7)
    assert store.migrate() == version
    assert "notes" in backend.tables()
    assert sorted(backend.query("SELECT version, applied_ns FROM schema_migrations")) == [
        (v, 7) for v in range(1, version + 1)
    ]


def test_a_failing_migration_is_rolled_back_alone(backend: Backend) -> None:
    known = load_migrations(backend.kind)
    version = len(known) + 1
    broken = Migration(
        version,
        f"{version:04d}_broken.sql",
        "CREATE TABLE notes (note TEXT);\nINSERT INTO missing VALUES (1);\n",
    )
    store = backend.open_store(migrations=[*known, broken])
    with pytest.raises(MigrationError, match=rf"{version:04d}_broken\.sql"):
        store.migrate()
    # The earlier files committed, each in its own transaction.
    assert store.schema_version() == version - 1
    assert "notes" not in backend.tables()


# --- batches and events ------------------------------------------------------------------


def test_a_batch_is_stored_once(store: Store) -> None:
    assert store.store_batch("web-01", 1, events_for("web-01", 1, 3), received_ns=T0)
    assert not store.store_batch("web-01", 1, events_for("web-01", 1, 3), received_ns=T0 + 1)
    assert not store.store_batch("web-01", 1, events_for("other", 9, 5), received_ns=T0 + 2)
    assert store.count_events() == 3
    assert [e.received_ns for e in store.events()] == [T0] * 3


def test_an_empty_batch_still_counts_as_stored(store: Store) -> None:
    assert store.store_batch("web-01", 1, [], received_ns=T0)
    assert not store.store_batch("web-01", 1, [], received_ns=T0)
    assert store.last_seq("web-01") == 1
    assert store.count_events() == 0


def test_events_round_trip_exactly(store: Store) -> None:
    event = auth_event("01JD0000000000000000000000")
    event.labels["team"] = "soc-tinh"
    # An enum value from a newer agent: proto3 enums are open.
    event.outcome = events_pb2.Outcome.ValueType(12345)
    # A field only a newer agent knows (number 99, varint 1) must survive storage.
    event = events_pb2.Event.FromString(event.SerializeToString() + b"\x98\x06\x01")
    assert store.store_batch("web-01", 5, [event], received_ns=T0 + 42)

    [stored] = store.events()
    assert stored.seq == 5
    assert stored.received_ns == T0 + 42
    assert stored.event == event
    assert stored.event.SerializeToString(deterministic=True) == event.SerializeToString(
        deterministic=True
    )
    assert stored.event.SerializeToString(deterministic=True).endswith(b"\x98\x06\x01")


def test_text_that_sql_cannot_hold_still_round_trips(store: Store) -> None:
    # PostgreSQL text cannot contain U+0000 but protobuf strings can; log lines sometimes do.
    event = auth_event("nul\x00id")
    event.host = "web\x00-01"
    event.auth.user = "ad\x00min"
    event.action = "đăng nhập thất bại 🔐"
    assert store.store_batch("web-01", 1, [event], received_ns=T0)
    assert [s.event for s in store.events()] == [event]

    odd = alert("A\x001")
    odd.host = "web\x00-01"
    assert store.insert_alert(odd)
    assert not store.insert_alert(odd)
    assert [a.alert for a in store.alerts()] == [odd]


def test_last_seq(store: Store) -> None:
    assert store.last_seq("web-01") == 0
    for seq in (1, 2, 7, 3):
        store.store_batch("web-01", seq, events_for("web-01", seq, 1), received_ns=T0)
    store.store_batch("db-01", 100, events_for("db-01", 100, 1), received_ns=T0)
    assert store.last_seq("web-01") == 7
    assert store.last_seq("db-01") == 100


def test_a_seq_beyond_bigint_is_refused_before_writing(store: Store) -> None:
    with pytest.raises(ValueError, match="seq"):
        store.store_batch("web-01", 2**63, events_for("web-01", 1, 1), received_ns=T0)
    assert store.count_events() == 0


def test_count_events(store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 3), received_ns=T0)
    store.store_batch("db-01", 1, events_for("db-01", 1, 2), received_ns=T0)
    assert store.count_events() == 5
    assert store.count_events(agent_id="web-01") == 3
    assert store.count_events(agent_id="db-01") == 2
    assert store.count_events(agent_id="nobody") == 0


def test_events_cursor_pages_in_insertion_order(store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 3), received_ns=T0)
    store.store_batch("db-01", 1, events_for("db-01", 1, 2), received_ns=T0)
    store.store_batch("web-01", 2, events_for("web-01", 2, 2), received_ns=T0)

    def read_all(agent_id: str | None) -> list[str]:
        seen, cursor = [], 0
        while page := store.events(after_row=cursor, limit=2, agent_id=agent_id):
            assert len(page) <= 2
            assert [s.row_id for s in page] == sorted(s.row_id for s in page)
            assert page[0].row_id > cursor
            seen += [s.event.id for s in page]
            cursor = page[-1].row_id
        return seen

    web = ["web-01-1-0", "web-01-1-1", "web-01-1-2", "web-01-2-0", "web-01-2-1"]
    assert read_all(None) == [*web[:3], "db-01-1-0", "db-01-1-1", *web[3:]]
    assert read_all("web-01") == web
    assert read_all("nobody") == []
    with pytest.raises(ValueError, match="limit"):
        store.events(limit=0)


def test_events_by_ids(store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 4), received_ns=T0)
    found = store.events_by_ids(["web-01-1-3", "missing", "web-01-1-1", "web-01-1-3"])
    assert [s.event.id for s in found] == ["web-01-1-1", "web-01-1-3"]
    assert store.events_by_ids([]) == []
    assert store.events_by_ids(["missing"]) == []


def test_events_by_ids_handles_long_lists(store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 1200), received_ns=T0)
    wanted = [f"web-01-1-{i}" for i in range(0, 1200, 2)] + [f"x{i}" for i in range(600)]
    assert [s.event.id for s in store.events_by_ids(wanted)] == wanted[:600]


def test_a_failing_batch_leaves_nothing_behind(backend: Backend, store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 2), received_ns=T0)
    backend.poison()  # the database refuses the third event of the next batch
    good = events_for("web-01", 2, 4)
    batch = [*good[:2], auth_event("poison"), *good[2:]]
    with pytest.raises(StorageError, match="poisoned event"):
        store.store_batch("web-01", 2, batch, received_ns=T0)
    assert store.count_events() == 2
    assert store.last_seq("web-01") == 1

    # Nothing of the failed attempt remains, not even its dedup record: a resend is stored.
    backend.unpoison()
    assert store.store_batch("web-01", 2, batch, received_ns=T0)
    assert store.count_events() == 7


def test_group_commit_stores_new_batches_and_skips_duplicates(store: Store) -> None:
    store.store_batch("web-01", 1, events_for("web-01", 1, 2), received_ns=T0)
    results = store.store_batches(
        [
            BatchToStore("web-01", 1, events_for("web-01", 1, 2), T0),  # stored before
            BatchToStore("web-01", 2, events_for("web-01", 2, 3), T0),
            BatchToStore("web-02", 1, events_for("web-02", 1, 1), T0),
            BatchToStore("web-01", 2, events_for("web-01", 2, 3), T0),  # twice in one call
        ]
    )
    assert results == [False, True, True, False]
    assert store.count_events(agent_id="web-01") == 5
    assert store.count_events(agent_id="web-02") == 1
    assert store.last_seq("web-01") == 2
    assert store.store_batches([]) == []


def test_a_failing_group_commit_stores_none_of_it(backend: Backend, store: Store) -> None:
    backend.poison()
    group = [
        BatchToStore("web-01", 1, events_for("web-01", 1, 2), T0),
        BatchToStore("web-02", 1, [auth_event("poison", "web-02")], T0),
    ]
    with pytest.raises(StorageError, match="poisoned event"):
        store.store_batches(group)
    assert store.count_events() == 0
    assert store.last_seq("web-01") == 0
    backend.unpoison()
    assert store.store_batches(group) == [True, True]


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 4)), max_size=12))
def test_stored_events_are_the_sum_of_distinct_batches(
    store: Store, batches: list[tuple[int, int]]
) -> None:
    agent_id = f"agent-{uuid.uuid4().hex}"  # the store outlives examples: keep them apart
    first_sizes: dict[int, int] = {}
    for seq, size in batches:
        stored = store.store_batch(agent_id, seq, events_for(agent_id, seq, size), T0)
        assert stored == (seq not in first_sizes)
        first_sizes.setdefault(seq, size)
    assert store.count_events(agent_id=agent_id) == sum(first_sizes.values())
    assert store.last_seq(agent_id) == max(first_sizes, default=0)


# --- agents ------------------------------------------------------------------------------


def test_upsert_agent_keeps_first_seen(store: Store) -> None:
    store.upsert_agent(AgentRecord("web-01", "web-01", "0.1.0", T0, T0, 0, "10.0.0.5:51000"))
    status = events_pb2.AgentStatus(version="0.2.0", spool_events=12).SerializeToString()
    later = AgentRecord("web-01", "web-01b", "0.2.0", T0 + 50, T0 + 99, 8, "10.0.0.6:5", status)
    store.upsert_agent(later)
    assert store.get_agent("web-01") == AgentRecord(
        "web-01", "web-01b", "0.2.0", T0, T0 + 99, 8, "10.0.0.6:5", status
    )


def test_an_unknown_first_seen_is_filled_in_later(store: Store) -> None:
    store.upsert_agent(AgentRecord("web-01"))
    store.upsert_agent(AgentRecord("web-01", first_seen_ns=T0, last_seen_ns=T0))
    store.upsert_agent(AgentRecord("web-01", first_seen_ns=T0 + 5, last_seen_ns=T0 + 5))
    record = store.get_agent("web-01")
    assert record is not None
    assert (record.first_seen_ns, record.last_seen_ns) == (T0, T0 + 5)


def test_list_agents(store: Store) -> None:
    assert store.list_agents() == []
    for agent_id in ("web-02", "db-01", "web-01"):
        store.upsert_agent(AgentRecord(agent_id, hostname=agent_id, first_seen_ns=T0))
    assert [a.agent_id for a in store.list_agents()] == ["db-01", "web-01", "web-02"]
    assert store.get_agent("nobody") is None


# --- alerts ------------------------------------------------------------------------------


def test_an_alert_is_stored_once_and_open(store: Store) -> None:
    assert store.insert_alert(alert("A1"))
    assert not store.insert_alert(alert("A1", summary="a different alert, same id"))
    stored = store.get_alert("A1")
    assert stored is not None
    assert stored.status == "open"
    assert stored.alert == alert("A1")
    assert [a.alert.id for a in store.alerts()] == ["A1"]


def test_alerts_cursor_pages_oldest_first(store: Store) -> None:
    ids = [f"A{i}" for i in range(5)]
    for alert_id in ids:
        store.insert_alert(alert(alert_id))
    seen, cursor = [], 0
    while page := store.alerts(after_row=cursor, limit=2):
        seen += [a.alert.id for a in page]
        cursor = page[-1].row_id
    assert seen == ids
    assert store.alerts(after_row=cursor) == []


def test_insert_alerts_in_one_transaction(store: Store) -> None:
    store.insert_alert(alert("A0"))
    assert store.insert_alerts([alert("A0"), alert("A1"), alert("A2"), alert("A1")]) == [
        False,
        True,
        True,
        False,
    ]
    assert [a.alert.id for a in store.alerts()] == ["A0", "A1", "A2"]
    assert store.insert_alerts([]) == []


def test_recent_alerts_are_the_newest_oldest_first(store: Store) -> None:
    assert store.recent_alerts(3) == []
    for i in range(5):
        store.insert_alert(alert(f"A{i}"))
    assert [a.alert.id for a in store.recent_alerts(3)] == ["A2", "A3", "A4"]
    assert [a.alert.id for a in store.recent_alerts(50)] == [f"A{i}" for i in range(5)]
    with pytest.raises(ValueError, match="limit"):
        store.recent_alerts(0)


def test_unknown_ids_give_none(store: Store) -> None:
    assert store.get_alert("missing") is None
    assert store.get_agent("missing") is None


def test_a_closed_store_refuses_calls(backend: Backend) -> None:
    store = backend.open_store()
    store.migrate()
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.count_events()
