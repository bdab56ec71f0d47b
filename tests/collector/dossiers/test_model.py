"""The registry's models: validation names the bad field; the dossier lifecycle; assets."""

from __future__ import annotations

import datetime as dt
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from canhgac.config import format_validation_error
from collector.dossiers.model import (
    ALLOWED_TRANSITIONS,
    STATUS_LABELS,
    Assets,
    Decision,
    Dossier,
    DossierStatus,
    InformationSystem,
    TransitionError,
    asset_conflicts,
    dump,
    transition,
)

QUY_CHE = Decision(number="12/QĐ-UBND", date=dt.date(2026, 3, 1), issuer="UBND tỉnh")
APPROVAL = Decision(number="345/QĐ-UBND", date=dt.date(2026, 5, 10), issuer="UBND tỉnh")


def portal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "dvc-portal",
        "name": "Cổng dịch vụ công tỉnh",
        "owner": {"name": "UBND tỉnh", "email": "ubnd@tinh.gov.vn"},
        "operator": {"name": "Trung tâm Công nghệ thông tin và Truyền thông"},
        "system_type": "citizen_business_service",
        "info_classes": ["public", "personal_basic"],
        "handles_administrative_procedures": True,
        "data_subjects_basic": 250_000,
        "proposed_level": 3,
        "hosting": "rented_dc",
        "isolation": "logical",
    }
    data.update(changes)
    return data


def problems(model: type[Any], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return "; ".join(format_validation_error(caught.value))


def test_a_complete_system_validates_and_dumps_back_to_the_same_data() -> None:
    system = InformationSystem.model_validate(
        portal(
            specialised_unit={"name": "Phòng An toàn thông tin", "phone": "0123"},
            legacy_level_nd85=3,
            transition_deadline="2027-07-01",
            soc={"name": "SOC X", "contract_ref": "HĐ-01", "independent_of_operator": True},
            assessor={"name": "Đơn vị Y", "independent_of_operator": True, "licensed": True},
        )
    )
    assert system.regime == "vn-2026"
    assert system.transition_deadline == dt.date(2027, 7, 1)
    assert InformationSystem.model_validate(dump(system)) == system


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"id": "Cổng DVC"}, "id"),
        ({"name": ""}, "name"),
        ({"system_type": "website"}, "system_type"),
        ({"info_classes": ["public", "secret"]}, "info_classes[1]"),
        ({"info_classes": []}, "info_classes"),
        ({"info_classes": ["public", "public"]}, "info_classes"),
        ({"data_subjects_basic": -1}, "data_subjects_basic"),
        ({"data_subjects_sensitive": "many"}, "data_subjects_sensitive"),
        ({"infrastructure_reach": "province"}, "infrastructure_reach"),
        ({"proposed_level": 6}, "proposed_level"),
        ({"approved_level": 0}, "approved_level"),
        ({"legacy_level_nd85": 9}, "legacy_level_nd85"),
        ({"transition_deadline": "2027-07-01"}, "transition_deadline"),
        ({"hosting": "basement"}, "hosting"),
        ({"isolation": "airgap"}, "isolation"),
        ({"regime": "VN 2026"}, "regime"),
        ({"owner": {"name": "UBND", "email": "not-mail"}}, "owner.email"),
        ({"operator": {"name": "TT", "fax": "1"}}, "operator.fax"),
        ({"soc": {"name": "SOC", "contract": "x"}}, "soc.contract"),
        ({"assessor": {"name": "A", "licensed": "maybe"}}, "assessor.licensed"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_each_bad_value_is_named(changes: dict[str, Any], path: str) -> None:
    assert path in problems(InformationSystem, portal(**changes))


def test_required_fields_are_named() -> None:
    data = portal()
    for key in ("owner", "operator", "system_type"):
        del data[key]
    text = problems(InformationSystem, data)
    assert all(f"{key}: Field required" in text for key in ("owner", "operator", "system_type"))


def test_models_are_frozen() -> None:
    system = InformationSystem.model_validate(portal())
    with pytest.raises(ValidationError):
        system.name = "x"  # type: ignore[misc]  # the assignment the type checker forbids too


# --- dossier ------------------------------------------------------------------------------


def test_status_labels_are_those_of_mau_08() -> None:
    assert STATUS_LABELS == {
        "draft": "Đang dự thảo",
        "sent_for_appraisal": "Đã gửi thẩm định",
        "appraised": "Đã thẩm định",
        "approved": "Đã được phê duyệt",
    }
    assert Dossier().status_label == "Đang dự thảo"


def test_the_whole_lifecycle_forward_and_back_to_draft() -> None:
    d = Dossier(quy_che_decision=QUY_CHE)
    d = transition(d, "sent_for_appraisal")
    d = transition(d, "appraised")
    d = transition(d, "approved", decision=APPROVAL)
    assert (d.status, d.approval_decision) == ("approved", APPROVAL)
    reworked = transition(d, "draft")
    assert (reworked.status, reworked.approval_decision) == ("draft", None)
    assert reworked.quy_che_decision == QUY_CHE


STATUSES: tuple[DossierStatus, ...] = get_args(DossierStatus)
ALLOWED = {
    ("draft", "sent_for_appraisal"),
    ("sent_for_appraisal", "appraised"),
    ("appraised", "approved"),
    ("sent_for_appraisal", "draft"),
    ("appraised", "draft"),
    ("approved", "draft"),
}


def at(status: DossierStatus) -> Dossier:
    approval = APPROVAL if status == "approved" else None
    return Dossier(status=status, quy_che_decision=QUY_CHE, approval_decision=approval)


@pytest.mark.parametrize("to", STATUSES)
@pytest.mark.parametrize("here", STATUSES)
def test_every_transition_is_allowed_or_refused(here: DossierStatus, to: DossierStatus) -> None:
    assert ALLOWED_TRANSITIONS == ALLOWED
    decision = APPROVAL if to == "approved" else None
    if (here, to) in ALLOWED:
        assert transition(at(here), to, decision=decision).status == to
    else:
        with pytest.raises(TransitionError, match=f"cannot go from {here}"):
            transition(at(here), to, decision=decision)


def test_approval_without_a_quy_che_is_refused() -> None:
    with pytest.raises(TransitionError, match=r"approval refused: quy_che_decision: .*Quy chế"):
        transition(Dossier(status="appraised"), "approved", decision=APPROVAL)


def test_approval_before_the_quy_che_was_issued_is_refused() -> None:
    late = QUY_CHE.model_copy(update={"date": dt.date(2026, 6, 1)})
    with pytest.raises(TransitionError, match="no later than the approval"):
        transition(
            Dossier(status="appraised", quy_che_decision=late), "approved", decision=APPROVAL
        )


def test_approval_needs_its_decision_and_only_approval_takes_one() -> None:
    with pytest.raises(TransitionError, match="needs the approval decision"):
        transition(at("appraised"), "approved")
    with pytest.raises(TransitionError, match="only when approving"):
        transition(at("draft"), "sent_for_appraisal", decision=APPROVAL)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "approved", "quy_che_decision": dump(QUY_CHE)}, "approval_decision: required"),
        ({"status": "approved", "approval_decision": dump(APPROVAL)}, "quy_che_decision"),
        ({"approval_decision": dump(APPROVAL)}, "only while the status is approved"),
        ({"status": "rejected"}, "status"),
        (
            {"assessments": [{"kind": "yearly", "date": "2026-01-01", "assessor": "A"}]},
            "assessments[0].kind",
        ),
        (
            {"quy_che_decision": {"number": "1", "date": "2026-13-01", "issuer": "U"}},
            "quy_che_decision.date",
        ),
    ],
)
def test_an_inconsistent_dossier_is_refused(data: dict[str, Any], message: str) -> None:
    assert message in problems(Dossier, data)


# --- assets -------------------------------------------------------------------------------


def test_assets_are_normalized_and_sorted() -> None:
    assets = Assets.model_validate(
        {
            "agents": ["web-02", "web-01"],
            "hostnames": ["Web-01.Tinh.gov.vn.", "db-01"],
            "cidrs": ["10.20.0.0/24", "2001:db8::/64", "10.30.0.5"],
        }
    )
    assert assets.agents == ("web-01", "web-02")
    assert assets.hostnames == ("db-01", "web-01.tinh.gov.vn")
    assert assets.cidrs == ("10.20.0.0/24", "10.30.0.5/32", "2001:db8::/64")
    assert Assets.from_items(assets.items()) == assets


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"agents": ["bad id"]}, "agents[0]"),
        ({"hostnames": ["ok", "no spaces.vn"]}, "hostnames[1]"),
        ({"cidrs": ["10.0.0.1/24"]}, "cidrs[0]"),
        ({"cidrs": ["10.0.0.0/33"]}, "cidrs[0]"),
        ({"agents": ["a", "a"]}, "agents: Value error, a is listed twice"),
        ({"hostnames": ["A.vn", "a.vn."]}, "hostnames: Value error, a.vn is listed twice"),
    ],
)
def test_bad_assets_are_named(data: dict[str, Any], path: str) -> None:
    assert path in problems(Assets, data)


def test_an_asset_in_two_systems_is_a_conflict() -> None:
    systems = {
        "portal": Assets(agents=("web-01",), hostnames=("web-01.tinh.gov.vn",)),
        "egov": Assets(agents=("web-01", "mail-01"), cidrs=("10.20.0.0/16",)),
        "wan": Assets(cidrs=("10.20.5.0/24", "2001:db8::/32")),
        "lab": Assets(cidrs=("10.21.0.0/16",)),
    }
    found = [str(c) for c in asset_conflicts(systems)]
    assert found == [
        "agent web-01 is in system 'egov' and in system 'portal'",
        "cidr 10.20.5.0/24 is in system 'wan' and in system 'egov' (overlaps 10.20.0.0/16)",
    ]
    assert asset_conflicts({"a": Assets(cidrs=("10.0.0.0/8", "10.1.0.0/16"))}) == []
