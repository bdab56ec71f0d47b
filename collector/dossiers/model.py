"""The registry of information systems (HTTT): the system, its level dossier, its assets.

The shapes follow docs DOMAIN.md 6.1 and the dossier contents of 1.5 (TT 12/2022 Art. 8,
ND 331/2026 Arts. 21-22). Every model is frozen and refuses unknown keys; a bad value is
reported with its dotted path (`owner.email`, `assessments[0].kind`).

The dossier lifecycle is a pure function, `transition`: forward one step at a time
(draft -> sent_for_appraisal -> appraised -> approved), or back to draft for rework. Approval
is refused until the system's Quy chế (security regulation) decision is recorded, because the
Quy chế must be issued before the dossier is approved (TT 12 Art. 9(7); ND 331 Art. 30(7)).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from canhgac.config import StrictModel
from canhgac.errors import CanhGacError
from collector.enroll.naming import AGENT_ID_RE

# A subset of the enrollment token's system id rule, so every registered id can be bound.
SYSTEM_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
SystemId = Annotated[str, StringConstraints(pattern=SYSTEM_ID_PATTERN)]
Level = Annotated[int, Field(ge=1, le=5)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

SystemType = Literal[
    "internal", "citizen_business_service", "infrastructure", "industrial_control", "other"
]
InfoClass = Literal[
    "public",
    "private",
    "personal_basic",
    "personal_sensitive",
    "state_secret_mat",
    "state_secret_toi_mat",
    "state_secret_tuyet_mat",
]
InfrastructureReach = Literal["agency", "ministry_or_province", "national"]
Hosting = Literal["on_premise", "rented_dc", "cloud"]
Isolation = Literal["logical", "physical", "none"]
DossierStatus = Literal["draft", "sent_for_appraisal", "appraised", "approved"]
AssessmentKind = Literal["before_go_live", "periodic"]
AssetKind = Literal["agent", "hostname", "cidr"]
# The recurring activities whose cadence the regime sets per level (LevelRequirements fields).
ReviewKind = Literal[
    "log_review", "account_review", "vulnerability_scan", "penetration_test", "restore_test"
]
REVIEW_KINDS: tuple[ReviewKind, ...] = get_args(ReviewKind)

# The labels of ND 331 Mẫu 08, column "approval status".
STATUS_LABELS: dict[DossierStatus, str] = {
    "draft": "Đang dự thảo",
    "sent_for_appraisal": "Đã gửi thẩm định",
    "appraised": "Đã thẩm định",
    "approved": "Đã được phê duyệt",
}
_NEXT: dict[DossierStatus, DossierStatus] = {
    "draft": "sent_for_appraisal",
    "sent_for_appraisal": "appraised",
    "appraised": "approved",
}
ALLOWED_TRANSITIONS: frozenset[tuple[DossierStatus, DossierStatus]] = frozenset(
    [*_NEXT.items(), ("sent_for_appraisal", "draft"), ("appraised", "draft"), ("approved", "draft")]
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class RegistryError(CanhGacError):
    """A refused registry operation; `location` names the system (or the file) concerned."""


class TransitionError(RegistryError):
    """A dossier status change the lifecycle does not allow."""


@dataclass(frozen=True)
class AssetConflict:
    """One asset claimed by two systems (for CIDRs: two overlapping networks)."""

    kind: AssetKind
    value: str
    system_id: str
    other_value: str
    other_system_id: str

    def __str__(self) -> str:
        also = "" if self.other_value == self.value else f" (overlaps {self.other_value})"
        return (
            f"{self.kind} {self.value} is in system {self.system_id!r} and in system "
            f"{self.other_system_id!r}{also}"
        )


class AssetConflictError(RegistryError):
    """Assets that would belong to two systems; `conflicts` lists every one of them."""

    def __init__(self, conflicts: list[AssetConflict], *, location: str | None = None) -> None:
        super().__init__(
            "an asset may belong to one system only: " + "; ".join(map(str, conflicts)),
            location=location,
        )
        self.conflicts = conflicts


def _email(value: str) -> str:
    if value and not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


class Contact(StrictModel):
    """An organisation in the dossier overview: owner (chủ quản), operator, specialised unit."""

    name: Name
    mandate: str = ""
    representative: str = ""
    title: str = ""
    address: str = ""
    phone: str = ""
    email: Annotated[str, AfterValidator(_email)] = ""


class ContractedSoc(StrictModel):
    """The monitoring provider (SOC) under contract."""

    name: Name
    contract_ref: str = ""
    independent_of_operator: bool = False


class Assessor(StrictModel):
    """Who assesses the system (ND 331 Art. 31(2)(c); Directive 14/CT-TTg)."""

    name: Name
    independent_of_operator: bool = False
    independent_of_soc: bool = False
    licensed: bool = False


class InformationSystem(StrictModel):
    """One information system (HTTT) as registered: what its level is decided from."""

    id: SystemId
    name: Name
    owner: Contact
    operator: Contact
    specialised_unit: Contact | None = None
    scope: str = ""
    scale: str = ""
    users_served: str = ""
    system_type: SystemType
    info_classes: tuple[InfoClass, ...] = Field(min_length=1)
    handles_administrative_procedures: bool = False
    conditional_business_line: bool = False
    data_subjects_basic: int = Field(default=0, ge=0)
    data_subjects_sensitive: int = Field(default=0, ge=0)
    infrastructure_reach: InfrastructureReach | None = None
    requires_24x7: bool = False
    is_national_security_list: bool = False
    proposed_level: Level | None = None
    approved_level: Level | None = None
    legacy_level_nd85: Level | None = None
    transition_deadline: dt.date | None = None
    hosting: Hosting = "on_premise"
    isolation: Isolation = "none"
    regime: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] = "vn-2026"
    soc: ContractedSoc | None = None
    assessor: Assessor | None = None

    @model_validator(mode="after")
    def _consistent(self) -> InformationSystem:
        if len(set(self.info_classes)) != len(self.info_classes):
            raise ValueError("info_classes: each class may be listed once")
        if self.transition_deadline is not None and self.legacy_level_nd85 is None:
            raise ValueError("transition_deadline: only for a system with a legacy_level_nd85")
        return self


class Decision(StrictModel):
    """A decision (quyết định): its number, date and issuer."""

    number: Name
    date: dt.date
    issuer: Name


class Assessment(StrictModel):
    """One assessment of the system: before go-live or periodic."""

    kind: AssessmentKind
    date: dt.date
    assessor: Name
    independent: bool = False
    result: str = ""
    file_ref: str = ""


class ReviewRecord(StrictModel):
    """One recurring review done on the system: a log or account review, a vulnerability scan,
    a penetration test or a restore test, on `date`, by whom, over what, and where its report
    is filed. The regime's cadence for the kind at the system's level says when the next is due.
    """

    kind: ReviewKind
    date: dt.date
    by: str = ""
    scope: str = ""
    notes: str = ""
    file_ref: str = ""


class Dossier(StrictModel):
    """The level dossier (hồ sơ đề xuất cấp độ) of one system and where it stands.

    Consistent by construction: an approval decision exists exactly when the status is
    approved, and then a Quy chế decision dated no later than the approval exists too.
    """

    status: DossierStatus = "draft"
    appraisal_body: str = ""
    approval_decision: Decision | None = None
    quy_che_decision: Decision | None = None
    assessments: tuple[Assessment, ...] = ()
    reviews: tuple[ReviewRecord, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Dossier:
        if self.status == "approved":
            if self.approval_decision is None:
                raise ValueError("approval_decision: required when the status is approved")
            _check_quy_che(self.quy_che_decision, self.approval_decision)
        elif self.approval_decision is not None:
            raise ValueError("approval_decision: recorded only while the status is approved")
        return self

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


def _check_quy_che(quy_che: Decision | None, approval: Decision) -> None:
    if quy_che is None:
        raise ValueError(
            "quy_che_decision: approval is refused until the Quy chế bảo đảm an ninh mạng is "
            "issued (TT 12/2022 Art. 9(7); ND 331/2026 Art. 30(7))"
        )
    if quy_che.date > approval.date:
        raise ValueError(
            f"quy_che_decision.date: the Quy chế ({quy_che.date}) must be issued no later than "
            f"the approval ({approval.date})"
        )


def transition(dossier: Dossier, to: DossierStatus, *, decision: Decision | None = None) -> Dossier:
    """The dossier moved to status `to`, or TransitionError saying why not.

    `decision` is the approval decision, required for (and only for) `approved`. Going back to
    draft for rework drops the approval decision: the approval is no longer in force (the
    store's dossier history keeps it).
    """
    here = dossier.status
    if (here, to) not in ALLOWED_TRANSITIONS:
        allowed = [b for a, b in sorted(ALLOWED_TRANSITIONS) if a == here]
        raise TransitionError(
            f"cannot go from {here} ({STATUS_LABELS[here]}) to {to} ({STATUS_LABELS[to]}); "
            f"from {here} the dossier may go to: {', '.join(allowed)}"
        )
    if to != "approved":
        if decision is not None:
            raise TransitionError("an approval decision is recorded only when approving")
        return dossier.model_copy(update={"status": to, "approval_decision": None})
    if decision is None:
        raise TransitionError("approving needs the approval decision (number, date, issuer)")
    try:
        _check_quy_che(dossier.quy_che_decision, decision)
    except ValueError as exc:
        raise TransitionError(f"approval refused: {exc}") from None
    return dossier.model_copy(update={"status": to, "approval_decision": decision})


def _agent(value: str) -> str:
    if not AGENT_ID_RE.match(value):
        raise ValueError("agent ids are 1-128 letters, digits, '.', '_' or '-'")
    return value


def normalize_hostname(value: str) -> str:
    return value.strip().lower().rstrip(".")


def _hostname(value: str) -> str:
    name = normalize_hostname(value)
    if not _HOSTNAME.match(name):
        raise ValueError(f"{value!r} is not a host name")
    return name


def _cidr(value: str) -> str:
    try:
        return ipaddress.ip_network(value.strip(), strict=True).with_prefixlen
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR form: {exc}") from None


class Assets(StrictModel):
    """What belongs to one system: agent ids, host names, networks. Normalized and sorted
    (host names lowercase without a final dot, networks as `address/prefix`)."""

    agents: tuple[Annotated[str, AfterValidator(_agent)], ...] = ()
    hostnames: tuple[Annotated[str, AfterValidator(_hostname)], ...] = ()
    cidrs: tuple[Annotated[str, AfterValidator(_cidr)], ...] = ()

    @field_validator("agents", "hostnames", "cidrs")
    @classmethod
    def _unique_sorted(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for i, v in enumerate(values):
            if v in seen:
                raise ValueError(f"{v} is listed twice (item {i})")
            seen.add(v)
        return tuple(sorted(values))

    def items(self) -> list[tuple[AssetKind, str]]:
        return [
            *(("agent", v) for v in self.agents),
            *(("hostname", v) for v in self.hostnames),
            *(("cidr", v) for v in self.cidrs),
        ]

    @classmethod
    def from_items(cls, items: Sequence[tuple[str, str]]) -> Assets:
        fields = {"agent": "agents", "hostname": "hostnames", "cidr": "cidrs"}
        data: dict[str, list[str]] = {name: [] for name in fields.values()}
        for kind, value in items:
            data[fields[kind]].append(value)
        return cls.model_validate(data)


def asset_conflicts(systems: Mapping[str, Assets]) -> list[AssetConflict]:
    """Every asset found in two systems; for networks, every overlapping pair."""
    owner: dict[tuple[str, str], str] = {}
    found: list[AssetConflict] = []
    for system_id, assets in systems.items():
        for kind, value in assets.items():
            if kind == "cidr":
                continue
            other = owner.setdefault((kind, value), system_id)
            if other != system_id:
                found.append(AssetConflict(kind, value, system_id, value, other))
    nets = [
        (ipaddress.ip_network(c), c, system_id)
        for system_id, assets in systems.items()
        for c in assets.cidrs
    ]
    for i, (net, text, system_id) in enumerate(nets):
        for other_net, other_text, other_id in nets[:i]:
            same_family = net.version == other_net.version
            if other_id != system_id and same_family and net.overlaps(other_net):
                found.append(AssetConflict("cidr", text, system_id, other_text, other_id))
    return found


def dump(model: StrictModel) -> dict[str, Any]:
    """A model as plain YAML/JSON data (dates as ISO strings, tuples as lists)."""
    return model.model_dump(mode="json")
