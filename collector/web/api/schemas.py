"""The API's JSON, as pydantic models: field names here are the stable, documented contract.

Times are RFC 3339 strings in UTC (`...Z`), with the exact nanoseconds beside them as `*_ns`
integers where the store keeps nanoseconds; an unknown time is null (and its `_ns` 0). The
OpenAPI spec's schemas are generated from these models (spec.py), so the two cannot drift.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from collector.dossiers.incidents import Incident


class ApiModel(BaseModel):
    """Base of every response body: closed (no undocumented field), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def utc(ns: int) -> dt.datetime | None:
    """Nanoseconds since the epoch as a UTC time (microseconds), None for 0 (unknown)."""
    if not ns:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)


class ErrorBody(ApiModel):
    """Every refusal the API decides: 400, 404 and 429."""

    error: str = Field(description="bad_request, not_found or rate_limited")
    detail: str = Field(description="what was wrong, for a person to read")


class AlertItem(ApiModel):
    """One alert, as raised by a detection rule, with its triage status."""

    id: str
    rule_id: str
    rule_title: str
    severity: str = Field(description="informational, low, medium, high, critical or unknown")
    severity_level: int = Field(description="0 (unknown) to 5 (critical)")
    status: str = Field(description="open, acknowledged, resolved, false_positive or suppressed")
    created: dt.datetime | None
    created_ns: int
    first_seen: dt.datetime | None = Field(description="first event behind the alert")
    first_seen_ns: int
    last_seen: dt.datetime | None = Field(description="last event behind the alert")
    last_seen_ns: int
    agent_id: str
    host: str
    system_id: str = Field(description="the information system; empty when not mapped")
    system_level: int = Field(description="its security level 1-5, 0 when unknown")
    category: str = Field(description="national incident category, e.g. unauthorized_access")
    mitre_techniques: list[str]
    group: dict[str, str] = Field(description="the correlation group, e.g. source.ip")
    event_ids: list[str]
    event_count: int
    summary: str
    origin: str = Field(description="the collector that raised it")
    incident_id: str = Field(description="the incident the alert belongs to; may be empty")


class AlertPage(ApiModel):
    """A page of alerts and the cursor to pull the alerts stored after them."""

    items: list[AlertItem]
    next_cursor: str = Field(
        description="pass as `after` to get only alerts stored after this page; given even "
        "when the page is empty, so a poller keeps its place"
    )
    prev_cursor: str | None = Field(
        description="pass as `before` to page back to older alerts; null when there are none"
    )


class TriageItem(ApiModel):
    """One action taken on an alert (acknowledge, assign, comment, resolve...)."""

    at: dt.datetime | None
    at_ns: int
    actor: str
    action: str
    status_after: str
    assignee: str
    comment: str
    until: dt.datetime | None = Field(description="end of a suppression")
    until_ns: int


class AlertDetail(ApiModel):
    """One alert with its triage history, oldest first."""

    alert: AlertItem
    triage: list[TriageItem]


class SentReportItem(ApiModel):
    kind: str
    sent_at: dt.datetime
    reference: str
    recipient: str


class IncidentItem(ApiModel):
    """An incident: related alerts the on-site team handles and reports as one."""

    id: str
    title: str
    system_id: str
    system_level: int | None
    category: str
    severity: str
    status: str = Field(description="handled or not_handled")
    detected_at: dt.datetime = Field(description="starts the legal reporting clocks")
    detected_ns: int
    reported_at: dt.datetime | None
    personal_data_breach: bool
    alert_ids: list[str]
    reports: list[SentReportItem]


class IncidentPage(ApiModel):
    """A page of incidents by detection time, then id."""

    items: list[IncidentItem]
    next_cursor: str | None = Field(
        description="pass as `after` for the next page; null after the last page"
    )


class IncidentDetail(ApiModel):
    """One incident: its summary and the full record (the national report's fields)."""

    incident: IncidentItem
    record: Incident


class DropItem(ApiModel):
    source: str
    reason: str
    count: int


class AgentItem(ApiModel):
    """An agent, its enrollment and its health from its last status report."""

    agent_id: str
    hostname: str
    version: str
    system_id: str = Field(
        description="the information system the agent belongs to (by the system's assets, "
        "else the one its enrollment named); empty if none"
    )
    first_seen: dt.datetime | None
    first_seen_ns: int
    last_seen: dt.datetime | None
    last_seen_ns: int
    enrollment_status: str = Field(description="enrolled, revoked, or empty (never enrolled)")
    cert_not_after: dt.datetime | None = Field(description="its certificate's expiry")
    cert_not_after_ns: int
    status_reported: bool = Field(description="whether the agent has sent a status report")
    spool_events: int = Field(description="events waiting in the agent's spool")
    spool_bytes: int
    drops_total: int = Field(description="events the agent dropped, all sources and reasons")
    drops: list[DropItem]


class AgentList(ApiModel):
    items: list[AgentItem]


class SystemItem(ApiModel):
    """An information system: its security level and where its level dossier stands."""

    id: str
    name: str
    level: int | None = Field(description="the approved level, else the proposed one")
    approved_level: int | None
    proposed_level: int | None
    dossier_status: str | None = Field(
        description="draft, sent_for_appraisal, appraised or approved"
    )
    regime: str


class SystemList(ApiModel):
    items: list[SystemItem]
