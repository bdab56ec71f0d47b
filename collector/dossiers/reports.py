"""The national report documents, in Vietnamese (or English), as printable HTML and as JSON.

Three documents (docs DOMAIN.md 1.7, 3.1, 3.2, 6.2):
- the initial incident report, in the shape of TT 20/2017 Mẫu 03 (the report ND 331 Art. 31
  asks for within 72 h has no form of its own yet);
- the closure report, Mẫu 04;
- the annual report table of every system, in the shape of ND 331 Mẫu 08, with incidents by
  category over the period 15/12 of the previous year to 14/12.

A builder turns the records into a `Report`: sections of labelled fields, already in the chosen
language, plus the problems found (a mandatory field left empty, an unknown category). A
missing mandatory field is printed as a visible gap and listed, never silently blank. The two
renderers are pure functions of a `Report`, so the golden files pin the bytes. The HTML is
one self-contained page (inline style, no script, no external asset), every value escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.dossiers.clock import annual_report_window, to_local
from collector.dossiers.incidents import Incident
from collector.dossiers.model import STATUS_LABELS, Decision, Dossier, InformationSystem
from collector.dossiers.regime import Regime, ReportKind
from collector.dossiers.report_labels import LABELS, OPTIONS

Lang = Literal["vi", "en"]
Format = Literal["html", "json"]
MISSING = {"vi": "(chưa có — bắt buộc)", "en": "(missing — mandatory)"}


@dataclass(frozen=True)
class Line:
    """One labelled field of a report; `mandatory` fields marked (*) as on the form."""

    key: str
    label: str
    value: str
    mandatory: bool = False


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Table:
    """The annual report's table: column keys, their labels, and the rows' cells."""

    columns: tuple[str, ...]
    labels: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    lang: Lang
    title: str
    form: str
    sections: tuple[Section, ...]
    problems: tuple[str, ...] = ()
    table: Table | None = None
    meta: dict[str, str] = field(default_factory=dict)


def label(key: str, lang: Lang) -> str:
    vi, en = LABELS[key]
    return vi if lang == "vi" else en


def _when(t: dt.datetime | None) -> str:
    return "" if t is None else to_local(t).strftime("%d/%m/%Y %H:%M")


def _day(d: dt.date | None) -> str:
    return "" if d is None else d.strftime("%d/%m/%Y")


def _boxes(group: str, chosen: Sequence[str], lang: Lang, extra: Mapping[str, str]) -> str:
    """A checkbox row as on the paper form: every option, the chosen ones ticked."""
    parts = []
    for option in OPTIONS[group]:
        text = label(f"{group}.{option}", lang)
        if extra.get(option):
            text += f": {extra[option]}"
        parts.append(("☒ " if option in chosen else "☐ ") + text)
    return "  ".join(parts)


class _Builder:
    """Collects lines and the problems of one report."""

    def __init__(self, lang: Lang, required: Sequence[str] = ()) -> None:
        self.lang = lang
        # The fields the regime's form cannot leave empty (rules/regimes/*.yml report_forms).
        self.required = frozenset(required)
        self.sections: list[Section] = []
        self.problems: list[str] = []
        self._lines: list[Line] = []

    def line(self, key: str, value: str) -> None:
        text = value.strip()
        mandatory = key in self.required
        if mandatory and not text:
            what = "Thiếu trường bắt buộc" if self.lang == "vi" else "Missing mandatory field"
            self.problems.append(f"{what}: {label(key, self.lang)} ({key})")
        self._lines.append(Line(key, label(key, self.lang), text, mandatory))

    def section(self, key: str) -> None:
        if self._lines:
            self._close()
        self._key = key

    def _close(self) -> None:
        self.sections.append(Section(self._key, label(self._key, self.lang), tuple(self._lines)))
        self._lines = []

    def done(self) -> tuple[tuple[Section, ...], tuple[str, ...]]:
        if self._lines:
            self._close()
        return tuple(self.sections), tuple(self.problems)


def _reporter_and_system(
    b: _Builder, incident: Incident, system: InformationSystem | None, regime: Regime
) -> None:
    b.section("section.reporter")
    b.line("reporter.name", incident.reporter.name)
    b.line("reporter.address", incident.reporter.address)
    b.line("reporter.phone", incident.reporter.phone)
    b.line("reporter.email", incident.reporter.email)
    b.section("section.system")
    b.line("system.operator", system.operator.name if system else "")
    b.line("system.owner", system.owner.name if system else "")
    b.line("system.name", system.name if system else incident.system_id)
    level = incident.system_level or (
        system.approved_level or system.proposed_level if system else None
    )
    b.line("system.level", _boxes("level", [str(level)] if level else [], b.lang, {}))


def build_initial(
    incident: Incident, system: InformationSystem | None, regime: Regime, *, lang: Lang = "vi"
) -> Report:
    """The initial incident report (Mẫu 03 shape) of `incident` on `system` (None: unknown)."""
    b = _Builder(lang, regime.spec.report_forms["initial"].mandatory_fields)
    b.problems.extend(incident.check_regime(regime))
    _reporter_and_system(b, incident, system, regime)
    b.line("system.security_provider", incident.security_provider)
    b.line("system.connectivity", ", ".join(incident.connectivity_providers))
    b.section("section.incident")
    b.line("incident.description", incident.description)
    b.line("incident.detected_at", _when(incident.detected_at))
    b.line("incident.category", _category(incident, regime, lang))
    b.line("incident.severity", _severity(incident, regime, lang))
    b.line("incident.status", _boxes("status", [incident.status], lang, {}))
    detail: dict[str, str] = {m.kind: m.detail for m in incident.detection_methods}
    kinds = [m.kind for m in incident.detection_methods]
    detection = _boxes("detection", kinds, lang, detail) if kinds else ""
    b.line("incident.detection", detection)
    notified = _boxes("notified", incident.notified, lang, {}) if incident.notified else ""
    b.line("incident.notified", notified)
    yes_no = label("yes" if incident.personal_data_breach else "no", lang)
    b.line("incident.personal_data_breach", yes_no)
    b.section("section.contact")
    b.line("contact.name", incident.contact.name)
    b.line("contact.title", incident.contact.title)
    b.line("contact.phone", incident.contact.phone)
    b.line("contact.email", incident.contact.email)
    b.section("section.extra")
    b.line("extra.host_os", incident.host_os)
    other = {"other": incident.services_other}
    b.line("extra.services", _boxes("services", incident.services, lang, other))
    other = {"other": incident.controls_other}
    b.line("extra.controls", _boxes("controls", incident.controls, lang, other))
    b.line("extra.public_ips", ", ".join(incident.public_ips))
    b.line("extra.domains", ", ".join(incident.domains))
    b.line("extra.purpose", incident.purpose)
    other = {"other": incident.attachments_other}
    b.line("extra.attachments", _boxes("attachments", incident.attachments, lang, other))
    b.line(
        "extra.confidential", _boxes("yes_no", ["yes" if incident.confidential else "no"], lang, {})
    )
    b.line("extra.support_requested", incident.support_requested)
    b.section("section.signature")
    b.line("report.code", incident.report_code)
    b.line("report.reported_at", _when(incident.reported_at))
    sections, problems = b.done()
    return Report(
        kind="initial",
        lang=lang,
        title=label("title.initial", lang),
        form=_form(regime, "initial", lang),
        sections=sections,
        problems=problems,
        meta={"incident_id": incident.id, "email_subject_prefix": "[TBSC]"},
    )


def build_closure(
    incident: Incident, system: InformationSystem | None, regime: Regime, *, lang: Lang = "vi"
) -> Report:
    """The closure report (Mẫu 04) of `incident`."""
    b = _Builder(lang, regime.spec.report_forms["closure"].mandatory_fields)
    b.problems.extend(incident.check_regime(regime))
    closure = incident.closure
    _reporter_and_system(b, incident, system, regime)
    b.section("section.initial_report")
    b.line("closure.initial_report_ref", closure.initial_report_ref)
    b.line("closure.initial_report_date", _day(closure.initial_report_date))
    b.section("section.incident")
    b.line("incident.title", incident.title)
    b.line("incident.description", incident.description)
    b.line("incident.detected_at", _when(incident.detected_at))
    b.line("incident.category", _category(incident, regime, lang))
    b.section("section.result")
    b.line("closure.result", closure.result)
    b.line("closure.lessons", closure.lessons)
    b.line("closure.documents", "; ".join(closure.documents))
    b.section("section.signature")
    b.line("report.code", incident.report_code)
    b.line("report.reported_at", _when(incident.reported_at))
    sections, problems = b.done()
    return Report(
        kind="closure",
        lang=lang,
        title=label("title.closure", lang),
        form=_form(regime, "closure", lang),
        sections=sections,
        problems=problems,
        meta={"incident_id": incident.id},
    )


def _category(incident: Incident, regime: Regime, lang: Lang) -> str:
    try:
        name = regime.category(incident.category).name
    except KeyError:
        return incident.category
    return name.vi if lang == "vi" else name.en


def _severity(incident: Incident, regime: Regime, lang: Lang) -> str:
    for s in regime.severities:
        if s.id == incident.severity:
            return s.name.vi if lang == "vi" else s.name.en
    return incident.severity


def _form(regime: Regime, kind: ReportKind, lang: Lang) -> str:
    """The form the regime prescribes for this report (rules/regimes/*.yml report_forms)."""
    name = regime.spec.report_forms[kind].name
    return name.vi if lang == "vi" else name.en


def _decision(d: Decision | None) -> str:
    return "" if d is None else f"{d.number}, {_day(d.date)}, {d.issuer}"


def build_annual(
    year: int,
    regime: Regime,
    systems: Sequence[tuple[InformationSystem, Dossier]],
    incidents: Sequence[Incident],
    *,
    lang: Lang = "vi",
) -> Report:
    """The annual report (Mẫu 08 shape) of `year`: every system, its dossier and assessments,
    and the incidents detected in the period [15/12 of year-1, 14/12 of year], by category.

    `incidents` may hold more than the period: only those detected in it are counted.
    """
    window = annual_report_window(year, regime)
    start, end = window.period_start, window.period_end
    counted = [i for i in incidents if start <= i.detected_at < end]
    categories = [c.id for c in regime.categories]
    columns = [
        "row",
        "system",
        "owner",
        "operator",
        "level",
        "dossier_status",
        "approval_decision",
        "quy_che_decision",
        "assessments",
    ]
    names = [label(f"annual.{c}", lang) for c in columns]
    for c in regime.categories:
        columns.append(f"incidents.{c.id}")
        names.append(c.name.vi if lang == "vi" else c.name.en)
    columns.append("incidents.total")
    names.append(label("annual.incidents_total", lang))
    rows = []
    problems = []
    for n, (system, dossier) in enumerate(systems, start=1):
        mine = [i for i in counted if i.system_id == system.id]
        done = [a for a in dossier.assessments if start.date() <= a.date < end.date()]
        kinds = sorted({a.kind for a in done}, key=["before_go_live", "periodic"].index)
        status = STATUS_LABELS[dossier.status] if lang == "vi" else dossier.status
        cells = [
            str(n),
            system.name,
            system.owner.name,
            system.operator.name,
            str(system.proposed_level or ""),
            status,
            _decision(dossier.approval_decision),
            _decision(dossier.quy_che_decision),
            ", ".join(label(f"assessment.{k}", lang) for k in kinds),
        ]
        cells.extend(str(sum(1 for i in mine if i.category == c)) for c in categories)
        cells.append(str(len(mine)))
        rows.append(tuple(cells))
        if system.proposed_level is None:
            problems.append(f"{system.id}: {label('problem.no_level', lang)}")
    registered = {s.id for s, _ in systems}
    for i in counted:
        if i.system_id not in registered:
            problems.append(f"{i.id}: {label('problem.unregistered_system', lang)} {i.system_id!r}")
        elif i.category not in categories:
            problems.append(f"{i.id}: {label('problem.no_category', lang)}")
    b = _Builder(lang, regime.spec.report_forms["annual"].mandatory_fields)
    b.section("section.period")
    b.line("annual.period", f"{_day(start.date())} – {_day((end - dt.timedelta(days=1)).date())}")
    b.line("annual.unit_due", _day((window.unit_report_due - dt.timedelta(days=1)).date()))
    b.line("annual.owner_due", _day((window.owner_report_due - dt.timedelta(days=1)).date()))
    b.line("annual.recipient", regime.annual_report.recipient.value or "")
    b.section("section.totals")
    dossiers = [d for _, d in systems]
    b.line("totals.managed", str(len(systems)))
    b.line("totals.classified", str(sum(1 for s, _ in systems if s.proposed_level)))
    b.line("totals.with_dossier", str(sum(1 for d in dossiers if d.status != "draft")))
    appraised = sum(1 for d in dossiers if d.status in ("appraised", "approved"))
    b.line("totals.appraised", str(appraised))
    b.line("totals.approved", str(sum(1 for d in dossiers if d.status == "approved")))
    periodic = sum(
        1
        for d in dossiers
        if any(a.kind == "periodic" and start.date() <= a.date < end.date() for a in d.assessments)
    )
    b.line("totals.assessed_periodically", str(periodic))
    b.line("totals.incidents", str(len(counted)))
    sections, _ = b.done()
    return Report(
        kind="annual",
        lang=lang,
        title=f"{label('title.annual', lang)} {year}",
        form=_form(regime, "annual", lang),
        sections=sections,
        problems=tuple(problems),
        table=Table(tuple(columns), tuple(names), tuple(rows)),
        meta={"year": str(year), "regime": regime.id},
    )


def render_json(report: Report) -> str:
    """The report as JSON: stable key order, UTF-8 text, one trailing newline."""
    data: dict[str, Any] = {
        "kind": report.kind,
        "lang": report.lang,
        "title": report.title,
        "form": report.form,
        "meta": report.meta,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "fields": [
                    {"key": x.key, "label": x.label, "value": x.value, "mandatory": x.mandatory}
                    for x in s.lines
                ],
            }
            for s in report.sections
        ],
        "problems": list(report.problems),
    }
    if report.table is not None:
        t = report.table
        data["table"] = {
            "columns": [{"key": k, "label": n} for k, n in zip(t.columns, t.labels, strict=True)],
            "rows": [dict(zip(t.columns, r, strict=True)) for r in t.rows],
        }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


_STYLE = (
    "body{font-family:'Times New Roman',serif;max-width:60em;margin:2em auto;color:#000}"
    "h1{text-align:center;font-size:1.3em}h2{font-size:1.05em;margin-top:1.2em}"
    ".form{text-align:right;font-style:italic}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #000;padding:.25em .4em;vertical-align:top;text-align:left}"
    "th.l{width:35%}.missing{color:#b00;font-weight:bold}.problems{border:2px solid #b00;"
    "padding:.5em 1em}@media print{.problems{display:none}}"
)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def render_html(report: Report) -> str:
    """The report as one printable, self-contained HTML page."""
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{report.lang}">',
        '<head><meta charset="utf-8">',
        f"<title>{_e(report.title)}</title>",
        f"<style>{_STYLE}</style></head>",
        "<body>",
        f'<p class="form">{_e(report.form)}</p>',
        f"<h1>{_e(report.title)}</h1>",
    ]
    if report.problems:
        out.append(f'<div class="problems"><p>{_e(label("problems", report.lang))}</p><ul>')
        out.extend(f"<li>{_e(p)}</li>" for p in report.problems)
        out.append("</ul></div>")
    for s in report.sections:
        out.append(f"<h2>{_e(s.title)}</h2>")
        out.append("<table>")
        for x in s.lines:
            star = " (*)" if x.mandatory else ""
            if x.value:
                value = _e(x.value)
            elif x.mandatory:
                value = f'<span class="missing">{_e(MISSING[report.lang])}</span>'
            else:
                value = ""
            out.append(f'<tr><th class="l">{_e(x.label)}{star}</th><td>{value}</td></tr>')
        out.append("</table>")
    if report.table is not None:
        t = report.table
        out.append(f"<h2>{_e(label('section.table', report.lang))}</h2>")
        out.append("<table>")
        out.append("<tr>" + "".join(f"<th>{_e(n)}</th>" for n in t.labels) + "</tr>")
        for row in t.rows:
            out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
        out.append("</table>")
    out.extend(["</body>", "</html>", ""])
    return "\n".join(out)


def render(report: Report, fmt: Format) -> str:
    return render_html(report) if fmt == "html" else render_json(report)
