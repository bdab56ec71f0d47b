"""The AuditStore contract (collector/audit/model.py), run against every backend."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
import pytest

from canhgac.errors import StorageError
from collector.audit.model import GENESIS, AuditEntry, AuditRecord, verify_chain
from collector.storage.base import Store
from tests.collector.storage.conftest import Backend

T0 = 1_732_000_000_000_000_000
# The log refuses UPDATE and DELETE; a tamperer drops these triggers first, as these tests do.
_DROP_GUARDS = {
    "sqlite": "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
    "postgres": "DROP TRIGGER audit_log_append_only ON audit_log",
}


def entry(n: int, actor: str = "cli:root") -> AuditEntry:
    return AuditEntry(actor, "user.add", f"user-{n}", {"role": "operator", "n": n})


def all_records(store: Store) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while page := store.audit_records(after_seq=records[-1].seq if records else 0, limit=1000):
        records += page
    return records


def test_an_empty_log_has_no_last_record(store: Store) -> None:
    assert store.last_audit_record() is None
    assert store.audit_records() == []
    assert verify_chain(store.audit_records()).ok


def test_appends_form_an_intact_gap_free_chain(store: Store) -> None:
    made = [store.append_audit(entry(n), at_ns=T0 + n) for n in range(250)]
    assert [r.seq for r in made] == list(range(1, 251))
    assert made[0].prev_hash == GENESIS
    records = all_records(store)
    assert records == made
    check = verify_chain(records)
    assert (check.ok, check.checked, check.last_seq) == (True, 250, 250)
    last = store.last_audit_record()
    assert last is not None
    assert check.last_hash == made[-1].hash == last.hash


def test_detail_reads_back_as_hashed(store: Store) -> None:
    detail = {"systems": ("portal", "mail"), "tên": "Nguyễn", "nested": {"b": 1, "a": [1.5]}}
    made = store.append_audit(AuditEntry("admin", "api_token.create", "t1", detail), at_ns=T0)
    (read,) = store.audit_records()
    assert read == made
    assert read.detail["systems"] == ["portal", "mail"]
    assert verify_chain([read]).ok


def test_detail_that_is_not_json_is_refused_before_writing(store: Store) -> None:
    with pytest.raises(ValueError, match="plain JSON"):
        store.append_audit(AuditEntry("admin", "x", detail={"s": {1, 2}}), at_ns=T0)
    assert store.last_audit_record() is None


def test_filters(store: Store) -> None:
    store.append_audit(AuditEntry("alice", "alert.acknowledge", "a1"), at_ns=T0 + 1)
    store.append_audit(AuditEntry("bob", "alert.resolve", "a1"), at_ns=T0 + 2)
    store.append_audit(AuditEntry("alice", "user.add", "carol"), at_ns=T0 + 3)
    store.append_audit(AuditEntry("alice", "alert_x", "a2"), at_ns=T0 + 4)

    def seqs(**kw: Any) -> list[int]:
        return [r.seq for r in store.audit_records(**kw)]

    assert seqs(actor="alice") == [1, 3, 4]
    assert seqs(action_prefix="alert.") == [1, 2]
    assert seqs(action_prefix="alert_") == [4]  # `_` is literal, not a wildcard
    assert seqs(target="a1") == [1, 2]
    assert seqs(from_ns=T0 + 2, before_ns=T0 + 4) == [2, 3]
    assert seqs(after_seq=2, limit=1) == [3]
    with pytest.raises(ValueError, match="limit"):
        store.audit_records(limit=0)


def test_concurrent_writers_leave_an_intact_gap_free_chain(backend: Backend, store: Store) -> None:
    writers, per_writer = 4, 25
    stores = [backend.open_store() for _ in range(writers)]
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(index: int) -> None:
        try:
            start.wait()
            for n in range(per_writer):
                stores[index].append_audit(entry(n, actor=f"w{index}"), at_ns=T0 + n)
        except (StorageError, ValueError) as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = all_records(store)
    assert [r.seq for r in records] == list(range(1, writers * per_writer + 1))
    assert verify_chain(records).ok
    for i in range(writers):
        assert len([r for r in records if r.actor == f"w{i}"]) == per_writer


def _tamper(backend: Backend, statement: str) -> None:
    backend.run_script(_DROP_GUARDS[backend.kind])
    backend.run_script(statement)


def test_the_log_refuses_update_and_delete(backend: Backend, store: Store) -> None:
    store.append_audit(entry(1), at_ns=T0)
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        backend.run_script("UPDATE audit_log SET actor = 'x'")
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        backend.run_script("DELETE FROM audit_log")
    assert verify_chain(all_records(store)).ok


@pytest.mark.parametrize(
    ("statement", "broken", "reason"),
    [
        ('UPDATE audit_log SET detail = \'{"n":4,"role":"admin"}\' WHERE seq = 5', 5, "modified"),
        ("UPDATE audit_log SET actor = 'someone' WHERE seq = 5", 5, "modified"),
        ("UPDATE audit_log SET at_ns = at_ns + 1 WHERE seq = 5", 5, "modified"),
        # The first record after the gap is named; the reason names the missing one.
        ("DELETE FROM audit_log WHERE seq = 5", 6, "expected record 5, found 6 (missing"),
        ("UPDATE audit_log SET hash = '" + "f" * 64 + "' WHERE seq = 5", 5, "modified"),
        ("UPDATE audit_log SET prev_hash = '" + "0" * 64 + "' WHERE seq = 5", 5, "prev_hash"),
    ],
)
def test_tampering_is_found_at_the_exact_record(
    backend: Backend, store: Store, statement: str, broken: int, reason: str
) -> None:
    for n in range(9):
        store.append_audit(entry(n), at_ns=T0 + n)
    _tamper(backend, statement)
    check = verify_chain(all_records(store))
    assert not check.ok
    assert check.broken_seq == broken
    assert reason in check.reason
    assert check.checked == 4
