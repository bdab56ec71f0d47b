"""Incidents: the record the on-site team handles and reports, with its legal clocks.

An `Incident` holds the fields of the national incident report (TT 20/2017 Mẫu 03, ND 331/2026
Art. 31) and of the closure report (Mẫu 04), see docs DOMAIN.md 3.1, 3.2 and 6.1. Its id is the
`incident_id` the detection stage gives related alerts (protos alert.proto): the first alert of
an id opens the incident, later ones are attached (`IncidentStore.open_or_attach`).

Fields the reports require may stay empty while the incident is being handled; the report
builders (reports.py) list what is missing instead of printing a blank. What must never reach
an external report is refused here: a non-public IP address among `public_ips`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol, Self

from pydantic import AfterValidator, AwareDatetime, Field, ValidationError, model_validator

from canhgac.config import StrictModel
from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2
from collector.dossiers.clock import VN_TZ, incident_deadlines, to_local
from collector.dossiers.model import Level, RegistryError, _email, _hostname
from collector.dossiers.regime import DeadlineKind, IncidentDeadline, Regime, Severity
from collector.storage.enrollment_sql import Sql

IncidentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Status = Literal["handled", "not_handled"]
DetectionKind = Literal["ids", "log_review", "notified_by", "other"]
Notified = Literal["network_member", "isp", "coordinating_agency"]
Service = Literal["web", "mail", "database", "other"]
Control = Literal["antivirus", "firewall", "ids", "other"]
Attachment = Literal["system_logs", "malware_sample", "other"]
ReportKind = Literal["notice", "initial", "update", "final", "personal_data_notice"]
ClockState = Literal["due", "met", "missed"]

# Which sent reports discharge which legal duty. The 72 h report may be the preliminary
# (initial) report of a complex incident (ND 331 Art. 31(2)(d)); a notice is not a report.
SATISFIES: dict[DeadlineKind, frozenset[ReportKind]] = {
    "immediate_notice": frozenset({"notice", "initial", "final"}),
    "initial_notice": frozenset({"notice", "initial", "final"}),
    "report": frozenset({"initial", "final"}),
    "personal_data_breach_notice": frozenset({"personal_data_notice"}),
}


class IncidentError(RegistryError):
    """A refused incident operation; `location` names the incident."""


def _public_ip(value: str) -> str:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if not ip.is_global:
        # Mẫu 03 asks for public addresses only; internal ones must not leave the province.
        raise ValueError(f"{ip} is not a public address (internal addresses are not reported)")
    return str(ip)


PublicIp = Annotated[str, AfterValidator(_public_ip)]
Domain = Annotated[str, AfterValidator(_hostname)]
Email = Annotated[str, AfterValidator(_email)]


class Reporter(StrictModel):
    """Who reports (Mẫu 03: organisation or person, address, phone, e-mail)."""

    name: str = ""
    address: str = ""
    phone: str = ""
    email: Email = ""


class ContactPerson(StrictModel):
    """Who to contact about the incident."""

    name: str = ""
    title: str = ""
    phone: str = ""
    email: Email = ""


class DetectionMethod(StrictModel):
    """How the incident was found; `notified_by` and `other` say by whom or how in `detail`."""

    kind: DetectionKind
    detail: str = ""

    @model_validator(mode="after")
    def _detail(self) -> Self:
        if self.kind in ("notified_by", "other") and not self.detail.strip():
            raise ValueError(f"detail: required for detection method {self.kind}")
        return self


class SentReport(StrictModel):
    """One report of the chain as sent: notice, initial, update, final (or the data notice)."""

    kind: ReportKind
    sent_at: AwareDatetime
    reference: str = ""  # the document number (số văn bản)
    recipient: str = ""


class Closure(StrictModel):
    """The closure report's own fields (Mẫu 04)."""

    initial_report_ref: str = ""
    initial_report_date: dt.date | None = None
    result: str = ""  # what happened, how it was fixed
    lessons: str = ""
    documents: tuple[str, ...] = ()  # progress reports, response plan, log files...


class Incident(StrictModel):
    """One incident as recorded. `detected_at` starts the legal clocks (see `deadlines`)."""

    id: IncidentId
    report_code: str = ""
    title: str = ""
    system_id: str = ""
    system_level: Level | None = None
    reporter: Reporter = Reporter()
    contact: ContactPerson = ContactPerson()
    security_provider: str = ""
    connectivity_providers: tuple[str, ...] = ()
    description: str = ""
    detected_at: AwareDatetime
    status: Status = "not_handled"
    detection_methods: tuple[DetectionMethod, ...] = ()
    notified: tuple[Notified, ...] = ()
    host_os: str = ""
    services: tuple[Service, ...] = ()
    services_other: str = ""
    controls: tuple[Control, ...] = ()
    controls_other: str = ""
    public_ips: tuple[PublicIp, ...] = ()
    domains: tuple[Domain, ...] = ()
    purpose: str = ""
    attachments: tuple[Attachment, ...] = ()
    attachments_other: str = ""
    confidential: bool = False
    support_requested: str = ""
    reported_at: AwareDatetime | None = None
    category: str = ""  # one of the regime's category ids; "" until classified
    severity: Severity = "normal"
    personal_data_breach: bool = False
    alert_ids: tuple[str, ...] = ()
    reports: tuple[SentReport, ...] = ()
    closure: Closure = Closure()

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        for name in ("notified", "services", "controls", "public_ips", "domains", "attachments"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: each value may be listed once")
        return self

    def check_regime(self, regime: Regime) -> list[str]:
        """What this incident says that `regime` does not know (an unknown category)."""
        known = [c.id for c in regime.categories]
        if self.category and self.category not in known:
            return [f"category: {self.category!r} is not one of {', '.join(known)}"]
        return []

    def deadlines(self, regime: Regime, *, now: dt.datetime) -> tuple[IncidentClock, ...]:
        """The legal clocks the incident started, earliest first, and their state at `now`."""
        dues = incident_deadlines(
            self.detected_at,
            self.severity,
            regime,
            personal_data_breach=self.personal_data_breach,
        )
        now = to_local(now)
        clocks = []
        for d in dues:
            sent = sorted(r.sent_at for r in self.reports if r.kind in SATISFIES[d.deadline.kind])
            first = to_local(sent[0]) if sent else None
            state: ClockState
            if first is not None:
                state = "met" if d.immediate or first <= d.due else "missed"
            else:
                # "Immediately" has no end to pass: it stays due, and overdue, until sent.
                state = "due" if d.immediate or now <= d.due else "missed"
            clocks.append(IncidentClock(d.deadline, d.due, state, first))
        return tuple(clocks)


@dataclass(frozen=True)
class IncidentClock:
    """One legal duty of an incident: when it is due (Asia/Ho_Chi_Minh) and where it stands.

    `met`: a report that discharges it was sent by the due time; `missed`: none was, and the due
    time has passed (or the first one came late); `due`: not yet sent, still in time.
    """

    deadline: IncidentDeadline
    due: dt.datetime
    state: ClockState
    sent_at: dt.datetime | None = None

    @property
    def immediate(self) -> bool:
        return self.deadline.after.unit == "immediate"


@dataclass(frozen=True)
class ReportLogEntry:
    """One report document issued for an incident, with the SHA-256 of the bytes issued."""

    at_ns: int
    actor: str
    kind: str
    format: str
    lang: str
    sha256: str
    problems: int = 0


def incident_from_alert(alert: alert_pb2.Alert) -> Incident:
    """The incident the first alert of an incident id opens: detected when its first event was."""
    first_ns = alert.first_seen_ns or alert.created_ns
    return Incident(
        id=alert.incident_id,
        title=alert.rule_title,
        system_id=alert.system_id,
        system_level=alert.system_level or None,
        description=alert.summary,
        detected_at=dt.datetime.fromtimestamp(first_ns / 1e9, VN_TZ),
        detection_methods=(DetectionMethod(kind="ids"),),
        category=alert.category,
        alert_ids=(alert.id,),
    )


_SELECT = "SELECT data FROM incidents WHERE incident_id = ?"
_INSERT = (
    "INSERT INTO incidents (incident_id, system_id, category, severity, status, detected_ns, "
    "data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO NOTHING"
)
_UPDATE = (
    "UPDATE incidents SET system_id = ?, category = ?, severity = ?, status = ?, "
    "detected_ns = ?, data = ? WHERE incident_id = ?"
)
_ATTACH = (
    "INSERT INTO incident_alerts (alert_id, incident_id, attached_ns) VALUES (?, ?, ?) "
    "ON CONFLICT (alert_id) DO NOTHING"
)
_ALERTS = (
    "SELECT alert_id FROM incident_alerts WHERE incident_id = ? ORDER BY attached_ns, alert_id"
)
_LIST = (
    "SELECT incident_id FROM incidents WHERE (? = 0 OR system_id = ?) AND detected_ns >= ? "
    "AND detected_ns < ? ORDER BY detected_ns, incident_id"
)
_LOG = (
    "INSERT INTO incident_report_log (incident_id, at_ns, actor, kind, format, lang, sha256, "
    "problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class IncidentStore(Protocol):
    """Incidents, the alerts attached to them, and the log of report documents issued."""

    def create_incident(self, incident: Incident, *, at_ns: int) -> bool:
        """Store a new incident and attach its alert ids; False (nothing written) if it exists."""
        ...

    def update_incident(self, incident: Incident) -> None:
        """Replace an incident's record; IncidentError if unknown. Its alert ids are the
        store's (attached alerts are never dropped by an edit): `incident.alert_ids` is ignored."""
        ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def list_incidents(
        self,
        *,
        system_id: str | None = None,
        detected_from: dt.datetime | None = None,
        detected_before: dt.datetime | None = None,
    ) -> list[Incident]:
        """Incidents by detection time (then id), optionally of one system, in [from, before)."""
        ...

    def open_or_attach(
        self, alert: alert_pb2.Alert, *, at_ns: int, outbox: Sequence[str] = ()
    ) -> tuple[Incident, bool]:
        """The incident of `alert.incident_id`, opened from this alert when it is the first
        (True), else with the alert attached (False). ValueError for an alert without one.
        A newly opened incident is queued for each destination in `outbox` (kind "incident")
        in the same transaction."""
        ...

    def log_report(self, incident_id: str, entry: ReportLogEntry) -> None:
        """Append a report issued for the incident; IncidentError if unknown."""
        ...

    def report_log(self, incident_id: str) -> list[ReportLogEntry]:
        """The reports issued for the incident, oldest first."""
        ...


class IncidentStoreMixin:
    """IncidentStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def create_incident(self, incident: Incident, *, at_ns: int) -> bool:
        with self._sql_write("create_incident") as sql:
            return _create(sql, incident, at_ns)

    def update_incident(self, incident: Incident) -> None:
        with self._sql_write("update_incident") as sql:
            if sql.one(_SELECT + sql.lock_row, (incident.id,)) is None:
                raise IncidentError("no such incident", location=incident.id)
            stored = incident.model_copy(update={"alert_ids": ()})
            sql(_UPDATE, (*_columns(stored), incident.id))

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._sql_read("get_incident") as sql:
            return _read(sql, incident_id)

    def list_incidents(
        self,
        *,
        system_id: str | None = None,
        detected_from: dt.datetime | None = None,
        detected_before: dt.datetime | None = None,
    ) -> list[Incident]:
        params = (
            int(system_id is not None),
            system_id or "",
            _ns(detected_from) if detected_from is not None else -(2**63),
            _ns(detected_before) if detected_before is not None else 2**63 - 1,
        )
        with self._sql_read("list_incidents") as sql:
            ids = [str(row[0]) for row in sql.all(_LIST, params)]
            found = [_read(sql, i) for i in ids]
        return [i for i in found if i is not None]

    def open_or_attach(
        self, alert: alert_pb2.Alert, *, at_ns: int, outbox: Sequence[str] = ()
    ) -> tuple[Incident, bool]:
        # Imported here: collector.forward.model imports this module (for Incident).
        from collector.forward.store import enqueue_in

        if not alert.incident_id:
            raise ValueError(f"alert {alert.id} has no incident id")
        opened = incident_from_alert(alert)
        with self._sql_write("open_or_attach") as sql:
            created = _create(sql, opened, at_ns)
            if not created:
                sql(_ATTACH, (alert.id, alert.incident_id, at_ns))
            elif outbox:
                enqueue_in(sql, outbox, "incident", [alert.incident_id], at_ns)
            incident = _read(sql, alert.incident_id)
        assert incident is not None  # created or found in this transaction
        return incident, created

    def log_report(self, incident_id: str, entry: ReportLogEntry) -> None:
        with self._sql_write("log_report") as sql:
            if sql.one(_SELECT, (incident_id,)) is None:
                raise IncidentError("no such incident", location=incident_id)
            sql(
                _LOG,
                (
                    incident_id,
                    entry.at_ns,
                    entry.actor,
                    entry.kind,
                    entry.format,
                    entry.lang,
                    entry.sha256,
                    entry.problems,
                ),
            )

    def report_log(self, incident_id: str) -> list[ReportLogEntry]:
        with self._sql_read("report_log") as sql:
            rows = sql.all(
                "SELECT at_ns, actor, kind, format, lang, sha256, problems "
                "FROM incident_report_log WHERE incident_id = ? ORDER BY row_id",
                (incident_id,),
            )
        return [ReportLogEntry(*row) for row in rows]


def _ns(t: dt.datetime) -> int:
    delta = to_local(t) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _columns(incident: Incident) -> tuple[object, ...]:
    return (
        incident.system_id,
        incident.category,
        incident.severity,
        incident.status,
        _ns(incident.detected_at),
        incident.model_dump_json(),
    )


def _create(sql: Sql, incident: Incident, at_ns: int) -> bool:
    stored = incident.model_copy(update={"alert_ids": ()})
    if not sql.changed(_INSERT, (incident.id, *_columns(stored))):
        return False
    for alert_id in incident.alert_ids:
        sql(_ATTACH, (alert_id, incident.id, at_ns))
    return True


def _read(sql: Sql, incident_id: str) -> Incident | None:
    row = sql.one(_SELECT, (incident_id,))
    if row is None:
        return None
    alert_ids = tuple(str(r[0]) for r in sql.all(_ALERTS, (incident_id,)))
    try:
        incident = Incident.model_validate_json(row[0])
    except ValidationError as exc:
        raise StorageError(
            f"stored Incident cannot be read: {exc.errors()[0]['msg']}", location=incident_id
        ) from None
    return incident.model_copy(update={"alert_ids": alert_ids})
