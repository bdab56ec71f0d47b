"""Compliance findings: what the registry, the agents and the configuration say is missing.

`compute_findings` is a pure function of the store's reads, the configuration and `now`. Each
finding has a stable `code` (registered in FINDINGS), names the system (or the agent and host),
says what is wrong in Vietnamese and English, cites its legal basis with the confidence the
regime data gives it, and carries the data it was judged from. Where the regime does not know
a value (`value: null`, as in much of the legacy regime) the finding's outcome is
`cannot_be_judged` and it says so, instead of judging against an invented value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from collector.config import CollectorConfig
from collector.dossiers.assess import assess
from collector.dossiers.clock import VN_TZ, next_due, to_local
from collector.dossiers.model import REVIEW_KINDS, Dossier, InformationSystem, ReviewKind
from collector.dossiers.regime import Cadence, Confidence, Regime, Sourced
from collector.dossiers.retention import regime_of, system_level, system_retention
from collector.storage.base import AgentRecord, Store

Severity = Literal["high", "warning", "info"]
Outcome = Literal["violation", "cannot_be_judged"]


@dataclass(frozen=True)
class LegalBasis:
    """Where a requirement comes from: document and article (`source`) and how sure we are
    (V read in the legal text, S a secondary source, I an inference explained in `note`)."""

    source: str
    confidence: Confidence
    note: str | None = None

    @classmethod
    def of(cls, value: Sourced) -> LegalBasis:
        return cls(value.source, value.confidence, value.note)


@dataclass(frozen=True)
class Finding:
    """One compliance finding. Findings are reports, not errors."""

    code: str
    severity: Severity
    message_vi: str
    message_en: str
    basis: tuple[LegalBasis, ...]
    regime_id: str
    system_id: str | None = None
    agent_id: str | None = None
    hostname: str | None = None
    outcome: Outcome = "violation"
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "outcome": self.outcome,
            "system_id": self.system_id,
            "agent_id": self.agent_id,
            "hostname": self.hostname,
            "regime": self.regime_id,
            "message": {"vi": self.message_vi, "en": self.message_en},
            "basis": [
                {"source": b.source, "confidence": b.confidence, "note": b.note} for b in self.basis
            ],
            "data": dict(self.data),
        }


# Every finding code, with what it means (docs/operators/findings.md explains each).
FINDINGS: Final[dict[str, str]] = {
    "agent_without_system": "an agent (host) that belongs to no information system",
    "dossier_not_approved": "a level 3+ system whose level dossier is not approved",
    "quy_che_missing": "a level 3+ system without a Quy chế decision",
    "system_silent": "a system none of whose agents reported within findings.silent_after_s",
    "assessment_overdue": "the periodic assessment is overdue for the level's cadence",
    "retention_below_minimum": "configured retention shorter than the level's legal minimum",
    "forwarding_not_configured": "a level 3+ system not connected upstream (no forwarder yet)",
    "assessor_not_independent": "the assessor is not independent of the operator or the SOC",
    "level_below_minimum": "the proposed or approved level is below the calculator's minimum",
    "review_overdue": "a log/account review, scan, pentest or restore test is overdue for the "
    "level's cadence (the kind is in data.kind)",
}

# Legal bases that are not values in the regime files, by regime id.
_STATIC: Final[dict[str, dict[str, LegalBasis]]] = {
    "dossier_not_approved": {
        "vn-2026": LegalBasis(
            "ND 331/2026 Art. 30(6); fine under ND 330 Art. 23 (DOMAIN §6.1)", "V"
        ),
        "vn-legacy-2016": LegalBasis("ND 85/2016 Art. 12; TT 12/2022 (DOMAIN §1.4)", "S"),
    },
    "quy_che_missing": {
        "vn-2026": LegalBasis("ND 331/2026 Art. 30(7) (DOMAIN §6.1)", "V"),
        "vn-legacy-2016": LegalBasis("TT 12/2022 Art. 9(7) (DOMAIN §6.1)", "V"),
    },
    "forwarding_not_configured": {
        "vn-2026": LegalBasis(
            "Law 116/2025 Art. 40(1)(b); ND 331/2026 Art. 33(5) (DOMAIN §4.3)", "V"
        ),
        "vn-legacy-2016": LegalBasis(
            "TT 31/2017/TT-BTTTT (DOMAIN §4.1)", "S", "Status after 01/07/2026 unknown."
        ),
    },
    "independent_of_operator": {
        "vn-2026": LegalBasis("ND 331/2026 Art. 31(2)(c) (DOMAIN §1.6)", "V"),
        "vn-legacy-2016": LegalBasis("Directive 14/CT-TTg (2019) (DOMAIN §1.6)", "S"),
    },
    "independent_of_soc": {
        "vn-2026": LegalBasis("Directive 14/CT-TTg (2019) (DOMAIN §1.6)", "S"),
        "vn-legacy-2016": LegalBasis("Directive 14/CT-TTg (2019) (DOMAIN §1.6)", "S"),
    },
}
_NO_SYSTEM_BASIS: Final = LegalBasis(
    "DOMAIN §6.1 (components of an information system)",
    "I",
    "A host outside every system has no level, so no level's requirements reach it.",
)
_NO_FORWARDER_NOTE: Final = (
    "Canh Gác has no upstream forwarder yet, so forwarding cannot be configured; the finding "
    "stays until one exists and is configured for the system."
)


def static_basis(key: str, regime_id: str) -> LegalBasis:
    found = _STATIC[key].get(regime_id)
    if found is not None:
        return found
    return LegalBasis(
        f"no basis recorded for regime {regime_id} (see {', '.join(sorted(_STATIC[key]))})",
        "I",
        "The regime is not one whose texts findings.py cites.",
    )


@dataclass(frozen=True)
class _Context:
    config: CollectorConfig
    now: dt.datetime
    agents_by_system: Mapping[str, tuple[AgentRecord, ...]]


@dataclass(frozen=True)
class _Subject:
    system: InformationSystem
    dossier: Dossier
    regime: Regime
    level: int | None

    def finding(
        self,
        code: str,
        severity: Severity,
        vi: str,
        en: str,
        *basis: LegalBasis,
        outcome: Outcome = "violation",
        **data: Any,
    ) -> Finding:
        return Finding(
            code,
            severity,
            vi,
            en,
            basis,
            self.regime.id,
            system_id=self.system.id,
            outcome=outcome,
            data={"level": self.level, **data},
        )


def compute_findings(
    store: Store,
    regime: Regime,
    config: CollectorConfig,
    now: dt.datetime,
    *,
    regimes: Mapping[str, Regime] | None = None,
    system_id: str | None = None,
) -> list[Finding]:
    """Every finding, by system then code. `regime` is the deployment's; a system naming
    another regime present in `regimes` is judged under that one. `now` must be aware."""
    now = to_local(now)
    agents_by_system: dict[str, list[AgentRecord]] = {}
    findings: list[Finding] = []
    for agent in store.list_agents():
        if agent.enrollment_status == "revoked":
            continue
        owner = store.system_of_agent(agent.agent_id)
        if owner is None:
            if system_id is None:
                findings.append(_agent_without_system(agent, regime))
            continue
        agents_by_system.setdefault(owner, []).append(agent)
    ctx = _Context(config, now, {k: tuple(v) for k, v in agents_by_system.items()})
    for system in store.list_systems():
        if system_id is not None and system.id != system_id:
            continue
        subject = _Subject(
            system,
            store.get_dossier(system.id) or Dossier(),
            regime_of(system, regime, regimes),
            system_level(system),
        )
        for check in CHECKS.values():
            findings.extend(check(subject, ctx))
    return findings


def _agent_without_system(agent: AgentRecord, regime: Regime) -> Finding:
    host = agent.hostname or agent.agent_id
    return Finding(
        "agent_without_system",
        "warning",
        f"Máy {host} (agent {agent.agent_id}) không thuộc hệ thống thông tin nào: "
        "không áp dụng được yêu cầu theo cấp độ.",
        f"Host {host} (agent {agent.agent_id}) belongs to no information system: no level's "
        "requirements can be applied to it.",
        (_NO_SYSTEM_BASIS,),
        regime.id,
        agent_id=agent.agent_id,
        hostname=agent.hostname,
        data={"peer": agent.peer, "last_seen_ns": agent.last_seen_ns},
    )


Check = Callable[[_Subject, _Context], Iterator[Finding]]


def _dossier(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    if s.level is None or s.level < 3:
        return
    d = s.dossier
    if d.status != "approved":
        yield s.finding(
            "dossier_not_approved",
            "high",
            f"Hệ thống cấp độ {s.level} chưa có hồ sơ đề xuất cấp độ được phê duyệt "
            f"(hiện: {d.status_label}); không được đưa vào sử dụng.",
            f"Level {s.level} system without an approved level dossier (now: {d.status}); "
            "it must not go live.",
            static_basis("dossier_not_approved", s.regime.id),
            status=d.status,
        )
    if d.quy_che_decision is None:
        yield s.finding(
            "quy_che_missing",
            "high",
            f"Hệ thống cấp độ {s.level} chưa có quyết định ban hành Quy chế bảo đảm an ninh mạng.",
            f"Level {s.level} system without a decision issuing its Quy chế (security regulation).",
            static_basis("quy_che_missing", s.regime.id),
        )


def _silent(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    agents = ctx.agents_by_system.get(s.system.id, ())
    limit_s = ctx.config.findings.silent_after_s
    now_ns = (ctx.now - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    now_ns *= 1000
    newest = max((a.last_seen_ns for a in agents), default=0)
    if agents and newest and now_ns - newest <= limit_s * 1_000_000_000:
        return
    basis = (
        ()
        if s.level is None
        else (LegalBasis.of(s.regime.requirements(s.level).central_monitoring),)
    )
    severity: Severity = "high" if s.level is not None and s.level >= 3 else "warning"
    if not agents:
        vi = "Hệ thống không có agent nào: không được giám sát."
        en = "The system has no agent at all: it is not monitored."
    else:
        vi = f"Không agent nào của hệ thống gửi dữ liệu trong {limit_s} giây qua."
        en = f"None of the system's agents reported within the last {limit_s} s."
    yield s.finding(
        "system_silent",
        severity,
        vi,
        en,
        *basis,
        agents=[a.agent_id for a in agents],
        last_seen_ns=newest,
        silent_after_s=limit_s,
    )


def _assessment(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    if s.level is None:
        return
    req = s.regime.requirements(s.level).assessment
    cadence = req.value
    dates = [a.date for a in s.dossier.assessments]
    last = max(dates) if dates else None
    data: dict[str, Any] = {
        "cadence": None if cadence is None else str(cadence),
        "last_assessment": None if last is None else last.isoformat(),
    }
    if cadence is Cadence.NOT_REQUIRED:
        return
    if cadence is None or (next_due(ctx.now, cadence) is None and last is None):
        # Unknown cadence, or one without an interval and nothing recorded: cannot judge.
        yield s.finding(
            "assessment_overdue",
            "info",
            "Không đánh giá được: chế độ pháp lý không cho biết chu kỳ kiểm tra, đánh giá "
            f"cho cấp độ {s.level}" + ("" if last else " và chưa có lần đánh giá nào được ghi"),
            "Cannot be judged: the regime gives no assessment interval for level "
            f"{s.level}" + ("" if last else ", and no assessment is recorded"),
            LegalBasis.of(req),
            outcome="cannot_be_judged",
            **data,
        )
        return
    if last is None:
        yield s.finding(
            "assessment_overdue",
            "high" if s.level >= 3 else "warning",
            f"Chưa ghi nhận lần kiểm tra, đánh giá nào (chu kỳ: {cadence}).",
            f"No assessment is recorded (cadence: {cadence}).",
            LegalBasis.of(req),
            **data,
        )
        return
    due = next_due(dt.datetime.combine(last, dt.time(), VN_TZ), cadence)
    if due is None or ctx.now < due:
        return
    yield s.finding(
        "assessment_overdue",
        "high" if s.level >= 3 else "warning",
        f"Quá hạn kiểm tra, đánh giá định kỳ: lần gần nhất {last:%d/%m/%Y}, chu kỳ {cadence}, "
        f"hạn {due:%d/%m/%Y}.",
        f"Periodic assessment overdue: last on {last.isoformat()}, cadence {cadence}, due "
        f"{due.date().isoformat()}.",
        LegalBasis.of(req),
        due=due.date().isoformat(),
        **data,
    )


def _retention(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    if s.level is None:
        return
    r = system_retention(s.system, ctx.config.retention, s.regime)
    assert r.minimum is not None
    data: dict[str, Any] = {
        "configured_months": r.configured_months,
        "explicit": r.explicit,
        "minimum_months": r.minimum_months,
        "effective_months": r.effective_months,
    }
    if r.minimum_months is None:
        yield s.finding(
            "retention_below_minimum",
            "info",
            f"Không đánh giá được: chế độ pháp lý không cho biết thời gian lưu nhật ký tối thiểu "
            f"cho cấp độ {s.level}; đang lưu {r.configured_months} tháng theo cấu hình.",
            f"Cannot be judged: the regime does not know the minimum log retention for level "
            f"{s.level}; {r.configured_months} month(s) are kept as configured.",
            LegalBasis.of(r.minimum),
            outcome="cannot_be_judged",
            **data,
        )
    elif r.below_minimum:
        yield s.finding(
            "retention_below_minimum",
            "warning",
            f"Cấu hình lưu {r.configured_months} tháng, ngắn hơn mức tối thiểu "
            f"{r.minimum_months} tháng của cấp độ {s.level}; bộ thu giữ {r.effective_months} "
            "tháng.",
            f"Configured retention {r.configured_months} month(s) is shorter than the "
            f"minimum of {r.minimum_months} for level {s.level}; the collector keeps "
            f"{r.effective_months}.",
            LegalBasis.of(r.minimum),
            **data,
        )


def _forwarding(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    if s.level is None or s.level < 3:
        return
    basis = static_basis("forwarding_not_configured", s.regime.id)
    yield s.finding(
        "forwarding_not_configured",
        "warning",
        "Chưa cấu hình kết nối, chia sẻ dữ liệu giám sát lên cơ quan chức năng. Ghi chú: Canh Gác "
        "chưa có bộ chuyển tiếp (forwarder).",
        "Upstream forwarding of monitoring data is not configured. Note: Canh Gác has no "
        "forwarder yet.",
        LegalBasis(
            basis.source, basis.confidence, " ".join(filter(None, [basis.note, _NO_FORWARDER_NOTE]))
        ),
        forwarder="none",
    )


def _assessor(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    a, soc = s.system.assessor, s.system.soc
    if a is None:
        return
    reasons_vi: list[str] = []
    reasons_en: list[str] = []
    basis: list[LegalBasis] = []
    if not a.independent_of_operator:
        reasons_vi.append("không độc lập với đơn vị vận hành")
        reasons_en.append("not independent of the operator")
        basis.append(static_basis("independent_of_operator", s.regime.id))
    if soc is not None and not a.independent_of_soc:
        reasons_vi.append(f"không độc lập với đơn vị giám sát ({soc.name})")
        reasons_en.append(f"not independent of the monitoring provider ({soc.name})")
        basis.append(static_basis("independent_of_soc", s.regime.id))
    if s.level is not None and not a.licensed:
        external = s.regime.requirements(s.level).external_assessor_required
        if external.value:
            reasons_vi.append("cấp độ này cần tổ chức bên ngoài được cấp phép hoặc chỉ định")
            reasons_en.append("this level needs a licensed or designated external body")
            basis.append(LegalBasis.of(external))
    if reasons_en:
        yield s.finding(
            "assessor_not_independent",
            "high",
            f"Đơn vị đánh giá {a.name}: " + "; ".join(reasons_vi) + ".",
            f"Assessor {a.name}: " + "; ".join(reasons_en) + ".",
            *basis,
            assessor=a.name,
            soc=None if soc is None else soc.name,
            independent_of_operator=a.independent_of_operator,
            independent_of_soc=a.independent_of_soc,
            licensed=a.licensed,
        )


def _level(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    result = assess(s.system, s.regime)
    basis = [
        LegalBasis(f"{c.article} ({c.source})", c.confidence, c.note)
        for c in result.applied
        if c.level == result.level
    ]
    recorded: dict[str, Any] = {
        "proposed": s.system.proposed_level,
        "approved": s.system.approved_level,
    }
    low = {k: v for k, v in recorded.items() if v is None or v < result.level}
    if recorded["approved"] is not None and recorded["approved"] >= result.level:
        return  # an approved level at or above the minimum settles it
    if all(v is None for v in recorded.values()):
        low = {"proposed": None}
    else:
        low = {k: v for k, v in low.items() if v is not None}
    if not low:
        return
    shown_vi = ", ".join(
        f"{'đề xuất' if k == 'proposed' else 'phê duyệt'} {v or 'chưa có'}" for k, v in low.items()
    )
    shown_en = ", ".join(f"{k} {v or 'none'}" for k, v in low.items())
    yield s.finding(
        "level_below_minimum",
        "high",
        f"Cấp độ ({shown_vi}) thấp hơn cấp độ tối thiểu {result.level} theo tiêu chí xác định "
        "cấp độ.",
        f"Level ({shown_en}) is below the minimum level {result.level} the criteria require.",
        *basis,
        minimum_level=result.level,
        criteria=[c.id for c in result.applied],
        **recorded,
    )


# The activities of review_overdue, in Vietnamese for the messages.
REVIEW_LABELS_VI: Final[dict[ReviewKind, str]] = {
    "log_review": "rà soát nhật ký",
    "account_review": "rà soát tài khoản",
    "vulnerability_scan": "rà quét lỗ hổng",
    "penetration_test": "kiểm thử xâm nhập",
    "restore_test": "kiểm tra khôi phục dữ liệu sao lưu",
}


def _reviews(s: _Subject, ctx: _Context) -> Iterator[Finding]:
    """review_overdue, once per kind the regime requires at the system's level.

    The latest record of the kind + the cadence is the due date. With no record at all the
    first one is due one cadence after the dossier's approval date (the level and its duties
    are in force from the approval), or at once when the dossier is not approved: nothing then
    anchors a grace period, and an unapproved level 3+ system is already a finding.
    """
    if s.level is None:
        return
    requirements = s.regime.requirements(s.level)
    approval = s.dossier.approval_decision
    for kind in REVIEW_KINDS:
        req = getattr(requirements, kind)
        cadence: Cadence | None = req.value
        if cadence is Cadence.NOT_REQUIRED:
            continue
        dates = [r.date for r in s.dossier.reviews if r.kind == kind]
        last = max(dates) if dates else None
        vi_kind = REVIEW_LABELS_VI[kind]
        data: dict[str, Any] = {
            "kind": kind,
            "cadence": None if cadence is None else str(cadence),
            "last_review": None if last is None else last.isoformat(),
        }
        if cadence is None or (next_due(ctx.now, cadence) is None and last is None):
            # Unknown cadence, or one without an interval and nothing recorded: cannot judge.
            yield s.finding(
                "review_overdue",
                "info",
                f"Không đánh giá được ({vi_kind}): chế độ pháp lý không cho biết chu kỳ cho "
                f"cấp độ {s.level}" + ("" if last else " và chưa có lần nào được ghi"),
                f"Cannot be judged ({kind}): the regime gives no interval for level {s.level}"
                + ("" if last else ", and none is recorded"),
                LegalBasis.of(req),
                outcome="cannot_be_judged",
                **data,
            )
            continue
        if last is not None:
            start = dt.datetime.combine(last, dt.time(), VN_TZ)
            due = next_due(start, cadence)
        elif approval is not None:
            start = dt.datetime.combine(approval.date, dt.time(), VN_TZ)
            due = next_due(start, cadence)
        else:
            due = ctx.now
        if due is None or ctx.now < due:
            continue
        severity: Severity = "high" if s.level >= 3 else "warning"
        data |= {
            "due": due.date().isoformat(),
            "due_from": "last_review" if last else "approval" if approval else "now",
        }
        if last is not None:
            vi = (
                f"Quá hạn {vi_kind}: lần gần nhất {last:%d/%m/%Y}, chu kỳ {cadence}, "
                f"hạn {due:%d/%m/%Y}."
            )
            en = (
                f"{kind} overdue: last on {last.isoformat()}, cadence {cadence}, due "
                f"{due.date().isoformat()}."
            )
        elif approval is not None:
            vi = (
                f"Chưa ghi nhận lần {vi_kind} nào; hạn lần đầu {due:%d/%m/%Y} (phê duyệt hồ "
                f"sơ {approval.date:%d/%m/%Y} + chu kỳ {cadence})."
            )
            en = (
                f"No {kind} is recorded; the first was due {due.date().isoformat()} (dossier "
                f"approved {approval.date.isoformat()} + cadence {cadence})."
            )
        else:
            vi = f"Chưa ghi nhận lần {vi_kind} nào (chu kỳ: {cadence}); hồ sơ chưa được phê duyệt."
            en = f"No {kind} is recorded (cadence: {cadence}); the dossier is not approved."
        yield s.finding("review_overdue", severity, vi, en, LegalBasis.of(req), **data)


CHECKS: Final[dict[str, Check]] = {
    "level_below_minimum": _level,
    "dossier": _dossier,
    "system_silent": _silent,
    "assessment_overdue": _assessment,
    "retention_below_minimum": _retention,
    "forwarding_not_configured": _forwarding,
    "assessor_not_independent": _assessor,
    "review_overdue": _reviews,
}
