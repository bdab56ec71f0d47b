"""The registry part of the Store contract (collector/dossiers/store.py), on every backend.

The `store` fixture is the storage contract's: SQLite in tmp_path and PostgreSQL in a schema of
its own (skipped without a server, failing under CI=true).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from canhgac.errors import StorageError
from collector.dossiers.model import (
    AssetConflictError,
    Assets,
    Decision,
    Dossier,
    DossierStatus,
    InformationSystem,
    RegistryError,
    TransitionError,
    transition,
)
from collector.dossiers.store import DossierEvent, peer_address
from collector.storage.base import AgentRecord, Store
from tests.collector.storage import conftest as storage
from tests.collector.storage.conftest import Backend

# The storage contract's fixtures, so these tests run on every backend too.
backend = storage.backend
postgres_server = storage.postgres_server
postgres_dsn = storage.postgres_dsn
store = storage.store

T0 = 1_780_000_000_000_000_000
QUY_CHE = Decision(number="12/QĐ-UBND", date=dt.date(2026, 3, 1), issuer="UBND tỉnh")
APPROVAL = Decision(number="345/QĐ-UBND", date=dt.date(2026, 5, 10), issuer="UBND tỉnh")


def system(system_id: str = "dvc-portal", **changes: Any) -> InformationSystem:
    data: dict[str, Any] = {
        "id": system_id,
        "name": f"Hệ thống {system_id}",
        "owner": {"name": "UBND tỉnh"},
        "operator": {"name": "Trung tâm CNTT&TT"},
        "system_type": "citizen_business_service",
        "info_classes": ["public", "personal_basic"],
        "proposed_level": 3,
    }
    data.update(changes)
    return InformationSystem.model_validate(data)


def test_systems_are_created_read_listed_replaced_and_deleted(store: Store) -> None:
    assert store.upsert_system(system("b-sys")) is True
    assert store.upsert_system(system("a-sys")) is True
    assert [s.id for s in store.list_systems()] == ["a-sys", "b-sys"]
    changed = system("a-sys", name="Cổng dịch vụ công", approved_level=3)
    assert store.upsert_system(changed) is False
    assert store.get_system("a-sys") == changed
    assert store.get_system("nope") is None
    assert store.delete_system("a-sys") is True
    assert store.delete_system("a-sys") is False
    assert [s.id for s in store.list_systems()] == ["b-sys"]


def test_the_queried_columns_follow_the_model(store: Store, backend: Backend) -> None:
    store.upsert_system(system(approved_level=2))
    rows = backend.query("SELECT system_id, name, proposed_level, approved_level FROM info_systems")
    assert rows == [("dvc-portal", "Hệ thống dvc-portal", 3, 2)]


def test_a_new_system_has_a_draft_dossier_and_an_unknown_one_none(store: Store) -> None:
    store.upsert_system(system())
    assert store.get_dossier("dvc-portal") == Dossier()
    assert store.get_dossier("nope") is None
    assert store.dossier_history("dvc-portal") == []


def test_dossier_changes_are_stored_with_their_history(store: Store) -> None:
    store.upsert_system(system())
    d = Dossier(quy_che_decision=QUY_CHE)
    store.set_dossier("dvc-portal", d, actor="an", at_ns=T0, note="Quy chế issued")
    steps: list[tuple[DossierStatus, Decision | None]] = [
        ("sent_for_appraisal", None),
        ("appraised", None),
        ("approved", APPROVAL),
    ]
    for i, (to, decision) in enumerate(steps, start=1):
        before = d.status
        d = transition(d, to, decision=decision)
        store.set_dossier("dvc-portal", d, actor="bình", at_ns=T0 + i, expect_status=before)
    assert store.get_dossier("dvc-portal") == d
    assert store.dossier_history("dvc-portal") == [
        DossierEvent(T0, "an", "draft", "draft", "Quy chế issued"),
        DossierEvent(T0 + 1, "bình", "draft", "sent_for_appraisal"),
        DossierEvent(T0 + 2, "bình", "sent_for_appraisal", "appraised"),
        DossierEvent(T0 + 3, "bình", "appraised", "approved"),
    ]


def test_a_dossier_changed_meanwhile_is_not_overwritten(store: Store) -> None:
    store.upsert_system(system())
    sent = Dossier(status="sent_for_appraisal")
    store.set_dossier("dvc-portal", sent, actor="an", at_ns=T0, expect_status="draft")
    with pytest.raises(TransitionError, match="changed meanwhile: it is now sent_for_appraisal"):
        store.set_dossier("dvc-portal", sent, actor="bình", at_ns=T0 + 1, expect_status="draft")
    assert len(store.dossier_history("dvc-portal")) == 1


def test_unknown_systems_are_refused(store: Store) -> None:
    with pytest.raises(RegistryError, match="no such system"):
        store.set_dossier("ghost", Dossier(), actor="an", at_ns=T0)
    with pytest.raises(RegistryError, match="no such system"):
        store.set_assets("ghost", Assets(agents=("web-01",)))
    assert store.get_assets("ghost") is None


def test_the_history_is_append_only_and_outlives_the_system(store: Store, backend: Backend) -> None:
    store.upsert_system(system())
    store.set_dossier("dvc-portal", Dossier(appraisal_body="Phòng ATTT"), actor="an", at_ns=T0)
    for statement in ("UPDATE dossier_events SET actor = 'x'", "DELETE FROM dossier_events"):
        with pytest.raises(Exception, match="append-only"):  # driver's error
            backend.run_script(statement)
    assert store.delete_system("dvc-portal") is True
    assert store.get_dossier("dvc-portal") is None
    assert [e.actor for e in store.dossier_history("dvc-portal")] == ["an"]


def test_assets_are_replaced_read_and_unique_across_systems(store: Store) -> None:
    store.upsert_system(system("portal"))
    store.upsert_system(system("egov"))
    portal = Assets(agents=("web-01",), hostnames=("web-01.tinh.gov.vn",), cidrs=("10.20.0.0/24",))
    store.set_assets("portal", portal)
    assert store.get_assets("portal") == portal
    assert store.get_assets("egov") == Assets()
    with pytest.raises(AssetConflictError) as caught:
        store.set_assets(
            "egov", Assets(agents=("web-01", "mail-01"), cidrs=("10.20.0.128/25", "10.30.0.0/24"))
        )
    assert [str(c) for c in caught.value.conflicts] == [
        "agent web-01 is in system 'egov' and in system 'portal'",
        "cidr 10.20.0.128/25 is in system 'egov' and in system 'portal' (overlaps 10.20.0.0/24)",
    ]
    assert caught.value.location == "egov"
    assert store.get_assets("egov") == Assets()  # nothing written
    store.set_assets("portal", Assets(agents=("web-02",)))
    store.set_assets("egov", Assets(agents=("web-01",)))  # released by portal: now free
    assert store.get_assets("portal") == Assets(agents=("web-02",))


def test_a_system_with_assets_cannot_be_deleted(store: Store) -> None:
    store.upsert_system(system())
    store.set_assets("dvc-portal", Assets(hostnames=("web-01",)))
    with pytest.raises(RegistryError, match="1 asset"):
        store.delete_system("dvc-portal")
    store.set_assets("dvc-portal", Assets())
    assert store.delete_system("dvc-portal") is True


def test_system_of_agent_by_id_hostname_network_then_enrollment(store: Store) -> None:
    store.upsert_system(system("portal"))
    store.upsert_system(system("wan"))
    store.set_assets("portal", Assets(agents=("web-01",), hostnames=("db-01.tinh.gov.vn",)))
    store.set_assets("wan", Assets(cidrs=("10.20.0.0/16", "2001:db8::/48")))
    store.upsert_agent(AgentRecord("db-agent", hostname="DB-01.tinh.gov.vn", peer="ipv4:1.2.3.4:5"))
    store.upsert_agent(AgentRecord("r-01", hostname="r-01", peer="ipv4:10.20.3.4:50000"))
    store.upsert_agent(AgentRecord("r-02", hostname="r-02", peer="ipv6:[2001:db8::7]:50000"))
    store.upsert_agent(AgentRecord("other", hostname="other", peer="ipv4:192.0.2.1:1"))
    assert store.system_of_agent("web-01") == "portal"
    assert store.system_of_agent("db-agent") == "portal"
    assert store.system_of_agent("r-01") == "wan"
    assert store.system_of_agent("r-02") == "wan"
    assert store.system_of_agent("other") is None
    assert store.system_of_agent("unknown") is None
    assert store.system_of_agent("unknown", hostname="db-01.tinh.gov.vn.") == "portal"
    assert store.system_of_agent("unknown", address="10.20.9.9") == "wan"


def test_system_of_agent_falls_back_to_the_enrollment_binding(store: Store) -> None:
    from tests.collector.storage.test_enrollment_contract import enrollment, token

    store.create_token(token("t1", system_id="egov"))
    assert store.enroll_agent(enrollment("mail-01", "0a", system_id="egov")) == "enrolled"
    assert store.system_of_agent("mail-01") == "egov"
    store.upsert_system(system("portal"))
    store.set_assets("portal", Assets(hostnames=("mail-01.tinh.gov.vn",)))
    assert store.system_of_agent("mail-01") == "portal"  # the registry wins


def test_a_stored_row_that_no_longer_validates_is_a_storage_error(
    store: Store, backend: Backend
) -> None:
    store.upsert_system(system())
    backend.run_script('UPDATE info_systems SET data = \'{"id": "dvc-portal"}\'')
    with pytest.raises(StorageError, match="stored InformationSystem cannot be read"):
        store.get_system("dvc-portal")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.5:5123", "10.0.0.5"),
        ("ipv6:[2001:db8::1]:5123", "2001:db8::1"),
        ("10.0.0.5", "10.0.0.5"),
        ("unix:/run/x.sock", None),
        ("ipv6:[broken", None),
        ("", None),
    ],
)
def test_peer_address(peer: str, address: str | None) -> None:
    found = peer_address(peer)
    assert (str(found) if found else None) == address
