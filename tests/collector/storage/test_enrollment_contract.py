"""The enrollment part of the Store contract (collector/storage/enrollment.py), on every backend."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from canhgac.errors import StorageError
from collector.storage.base import AgentRecord, Store
from collector.storage.enrollment import (
    AgentCertificate,
    ChildCertificate,
    Enrollment,
    EnrollmentToken,
)
from tests.collector.storage.conftest import Backend

T0 = 1_732_000_000_000_000_000
HOUR = 3600 * 10**9


def token(tid: str = "t1", **fields: Any) -> EnrollmentToken:
    base = EnrollmentToken(token_id=tid, secret_hash="ab" * 32, created_ns=T0, expires_ns=T0 + HOUR)
    return replace(base, **fields)


def cert(serial: str, agent_id: str, issued: int = T0) -> AgentCertificate:
    return AgentCertificate(
        serial=serial,
        agent_id=agent_id,
        not_before_ns=issued,
        not_after_ns=issued + 90 * 24 * HOUR,
        issued_ns=issued,
    )


def enrollment(
    agent_id: str,
    serial: str,
    tid: str = "t1",
    *,
    now: int = T0 + 1,
    exclusive: bool = True,
    system_id: str = "",
) -> Enrollment:
    return Enrollment(
        token_id=tid,
        now_ns=now,
        agent_id=agent_id,
        hostname=f"{agent_id}.tinh.gov.vn",
        version="0.1.0",
        system_id=system_id,
        certificate=cert(serial, agent_id, now),
        exclusive=exclusive,
    )


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_are_stored_listed_and_revoked(store: Store) -> None:
    store.create_token(token("t1", system_id="portal", agent_id="web-01"))
    store.create_token(token("t2", created_ns=T0 + 5))
    assert store.get_token("t1") == token("t1", system_id="portal", agent_id="web-01")
    assert store.get_token("nope") is None
    assert [t.token_id for t in store.list_tokens()] == ["t1", "t2"]
    assert store.revoke_token("t2", T0 + 10)
    assert not store.revoke_token("t2", T0 + 11)  # already revoked
    assert not store.revoke_token("nope", T0)
    revoked = store.get_token("t2")
    assert revoked is not None
    assert (revoked.revoked_ns, revoked.state(T0 + 20)) == (T0 + 10, "revoked")


def test_a_token_id_is_unique(store: Store) -> None:
    store.create_token(token("t1"))
    with pytest.raises(StorageError):
        store.create_token(token("t1"))


def test_token_states() -> None:
    assert token().state(T0) == "unused"
    assert token().state(T0 + HOUR) == "expired"
    assert token(used_ns=T0 + 1).state(T0 + 2 * HOUR) == "used"
    assert token(revoked_ns=T0 + 1).state(T0 + 2) == "revoked"


# --- enrollment ------------------------------------------------------------------------------


def test_enrollment_records_agent_certificate_and_uses_the_token(store: Store) -> None:
    store.create_token(token(system_id="portal"))
    assert store.enroll_agent(enrollment("web-01", "aa01", system_id="portal")) == "enrolled"
    agent = store.get_agent("web-01")
    assert agent is not None
    assert (agent.enrollment_status, agent.system_id, agent.cert_serial) == (
        "enrolled",
        "portal",
        "aa01",
    )
    assert agent.hostname == "web-01.tinh.gov.vn"
    assert agent.cert_not_after_ns == cert("aa01", "web-01", T0 + 1).not_after_ns
    assert store.get_certificate("aa01") == cert("aa01", "web-01", T0 + 1)
    used = store.get_token("t1")
    assert used is not None
    assert (used.used_ns, used.used_by, used.state(T0 + 2)) == (T0 + 1, "web-01", "used")
    assert not store.revoke_token("t1", T0 + 3)  # a used token cannot be revoked


@pytest.mark.parametrize(
    ("stored", "now", "outcome"),
    [
        (None, T0 + 1, "unknown_token"),
        (token(used_ns=T0, used_by="x"), T0 + 1, "token_used"),
        (token(), T0 + HOUR, "token_expired"),
        (token(revoked_ns=T0), T0 + 1, "token_revoked"),
    ],
)
def test_enrollment_is_refused_with_a_bad_token_and_writes_nothing(
    store: Store, stored: EnrollmentToken | None, now: int, outcome: str
) -> None:
    if stored is not None:
        store.create_token(stored)
    assert store.enroll_agent(enrollment("web-01", "aa01", now=now)) == outcome
    assert store.get_agent("web-01") is None
    assert store.get_certificate("aa01") is None
    assert store.get_token("t1") == stored


def test_a_derived_agent_id_must_be_new_and_the_token_stays_unused(store: Store) -> None:
    store.upsert_agent(AgentRecord(agent_id="web-01", hostname="old"))
    store.create_token(token())
    assert store.enroll_agent(enrollment("web-01", "aa01")) == "agent_id_taken"
    unused = store.get_token("t1")
    assert unused is not None
    assert unused.state(T0 + 2) == "unused"
    assert store.get_certificate("aa01") is None
    assert store.enroll_agent(enrollment("web-01-2", "aa02")) == "enrolled"


def test_re_enrolling_a_named_agent_supersedes_its_certificates(store: Store) -> None:
    store.create_token(token("t1", system_id="portal"))
    store.create_token(token("t2"))
    assert store.enroll_agent(enrollment("web-01", "aa01", "t1", system_id="portal")) == "enrolled"
    store.revoke_agent("web-01", T0 + 2)
    again = enrollment("web-01", "aa02", "t2", now=T0 + 3, exclusive=False)
    assert store.enroll_agent(again) == "enrolled"
    agent = store.get_agent("web-01")
    assert agent is not None
    # Enrolled again, with the new certificate; a token without a system keeps the binding.
    assert (agent.enrollment_status, agent.cert_serial, agent.system_id, agent.revoked_ns) == (
        "enrolled",
        "aa02",
        "portal",
        0,
    )
    old = store.get_certificate("aa01")
    assert old is not None
    assert old.revoked_ns == T0 + 2  # revoked with the agent, not re-revoked
    assert store.revoked_serials(["aa01", "aa02"]) == {"aa01"}


def test_one_token_used_concurrently_enrolls_exactly_once(backend: Backend, store: Store) -> None:
    store.create_token(token())
    stores = [backend.open_store() for _ in range(4)]
    outcomes: list[str] = []
    start = threading.Barrier(len(stores))

    def attempt(i: int, own: Store) -> None:
        start.wait()
        outcomes.append(own.enroll_agent(enrollment(f"agent-{i}", f"c{i}")))

    threads = [threading.Thread(target=attempt, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["enrolled"] + ["token_used"] * (len(stores) - 1)
    winner = next(i for i in range(len(stores)) if store.get_agent(f"agent-{i}") is not None)
    assert [a.agent_id for a in store.list_agents()] == [f"agent-{winner}"]
    used = store.get_token("t1")
    assert used is not None
    assert used.used_by == f"agent-{winner}"


def test_upsert_agent_leaves_the_enrollment_fields_alone(store: Store) -> None:
    store.create_token(token(system_id="portal"))
    store.enroll_agent(enrollment("web-01", "aa01", system_id="portal"))
    store.upsert_agent(AgentRecord(agent_id="web-01", hostname="h", last_seen_ns=T0 + 9))
    agent = store.get_agent("web-01")
    assert agent is not None
    assert (agent.enrollment_status, agent.system_id, agent.cert_serial, agent.last_seen_ns) == (
        "enrolled",
        "portal",
        "aa01",
        T0 + 9,
    )


# --- renewal and revocation ------------------------------------------------------------------


def test_renewal_adds_a_certificate_and_keeps_the_old_one_valid(store: Store) -> None:
    store.create_token(token())
    store.enroll_agent(enrollment("web-01", "aa01"))
    assert store.renew_certificate("web-01", "aa01", cert("aa02", "web-01", T0 + 5))
    agent = store.get_agent("web-01")
    assert agent is not None
    assert agent.cert_serial == "aa02"
    assert store.revoked_serials(["aa01", "aa02"]) == set()
    assert not store.renew_certificate("web-01", "nope", cert("aa03", "web-01"))
    assert not store.renew_certificate("other", "aa01", cert("aa04", "other"))
    assert store.get_certificate("aa03") is None


def test_revocation_marks_the_agent_and_all_its_certificates(store: Store) -> None:
    store.create_token(token())
    store.enroll_agent(enrollment("web-01", "aa01"))
    store.renew_certificate("web-01", "aa01", cert("aa02", "web-01", T0 + 5))
    assert store.revoke_agent("nobody", T0) is None
    assert store.revoke_agent("web-01", T0 + 10) == 2
    assert store.revoke_agent("web-01", T0 + 11) == 0
    agent = store.get_agent("web-01")
    assert agent is not None
    assert (agent.enrollment_status, agent.revoked_ns) == ("revoked", T0 + 10)
    assert store.revoked_serials(["aa01", "aa02", "unknown"]) == {"aa01", "aa02"}
    assert not store.renew_certificate("web-01", "aa02", cert("aa03", "web-01"))
    revoked = store.get_certificate("aa02")
    assert revoked is not None
    assert revoked.revoke_reason == "agent revoked"


def test_revoked_serials_handles_long_lists(store: Store) -> None:
    store.create_token(token())
    store.enroll_agent(enrollment("web-01", "aa01"))
    store.revoke_agent("web-01", T0 + 10)
    many = [f"{i:x}" for i in range(1200)] + ["aa01"]
    assert store.revoked_serials(many) == {"aa01"}
    assert store.revoked_serials([]) == set()


# --- child collectors' certificates (the parent tier) ----------------------------------------


def child_cert(serial: str, name: str, issued: int = T0) -> ChildCertificate:
    return ChildCertificate(
        serial=serial,
        name=name,
        not_before_ns=issued - 300 * 10**9,
        not_after_ns=issued + 825 * 24 * HOUR,
        issued_ns=issued,
    )


def test_child_certificates_are_recorded_listed_and_looked_up(store: Store) -> None:
    assert store.list_child_certificates() == []
    store.record_child_certificate(child_cert("0b", "lang-son", T0 + 5))
    store.record_child_certificate(child_cert("0a", "cao-bang", T0))
    assert store.list_child_certificates() == [
        child_cert("0a", "cao-bang", T0),
        child_cert("0b", "lang-son", T0 + 5),
    ]
    assert store.child_certificate_state("lang-son", "0b") == "valid"
    assert store.child_certificate_state("lang-son", "ff") == "unknown"
    # A serial on record counts only for the child it was issued to.
    assert store.child_certificate_state("cao-bang", "0b") == "unknown"
    # Nor is an agent's certificate a child's.
    store.create_token(token("t1"))
    assert store.enroll_agent(enrollment("web-01", "0c")) == "enrolled"
    assert store.child_certificate_state("web-01", "0c") == "unknown"


def test_a_child_serial_is_unique(store: Store) -> None:
    store.record_child_certificate(child_cert("0a", "lang-son"))
    with pytest.raises(StorageError):
        store.record_child_certificate(child_cert("0a", "cao-bang"))


def test_revoking_a_child_revokes_all_its_unrevoked_certificates(store: Store) -> None:
    store.record_child_certificate(child_cert("01", "lang-son", T0))
    store.record_child_certificate(child_cert("02", "lang-son", T0 + 1))
    store.record_child_certificate(child_cert("03", "cao-bang", T0 + 2))
    assert store.revoke_child("lang-son", T0 + 10, "key leaked") == 2
    assert store.revoke_child("lang-son", T0 + 20, "again") == 0  # the first one is kept
    assert store.revoke_child("ghost", T0 + 20) == 0
    states = {c.serial: (c.revoked_ns, c.revoke_reason) for c in store.list_child_certificates()}
    assert states == {"01": (T0 + 10, "key leaked"), "02": (T0 + 10, "key leaked"), "03": (0, "")}
    assert store.child_certificate_state("lang-son", "01") == "revoked"
    assert store.child_certificate_state("cao-bang", "03") == "valid"
    # A certificate issued after the revocation is valid: that is how a child comes back.
    store.record_child_certificate(child_cert("04", "lang-son", T0 + 30))
    assert store.child_certificate_state("lang-son", "04") == "valid"
    assert store.revoke_child("lang-son", T0 + 40) == 1
    assert store.child_certificate_state("lang-son", "04") == "revoked"
