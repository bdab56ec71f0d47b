"""GET /api/v1/incidents and /api/v1/incidents/{incident_id}, in the caller's scope.

Listed by detection time, then id, oldest first; the cursor is the last (time, id) seen.
Detection time is when an incident's first event happened, not when it was stored, so this
cursor pages through a list; it is not a "new since" feed (alerts are: their incident_id
names the incident to fetch).
"""

from __future__ import annotations

import datetime as dt

from collector.dossiers.incidents import Incident
from collector.web.api.alerts import LIMIT
from collector.web.api.cursors import (
    INCIDENT_CURSOR_PATTERN,
    incident_cursor,
    parse_incident_cursor,
)
from collector.web.api.endpoint import ApiCall, ApiEndpoint, Param
from collector.web.api.errors import not_found
from collector.web.api.schemas import (
    IncidentDetail,
    IncidentItem,
    IncidentPage,
    SentReportItem,
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ns(t: dt.datetime) -> int:
    # Exact (microsecond) arithmetic, as the store computes its detected_ns column.
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def incident_item(incident: Incident) -> IncidentItem:
    return IncidentItem(
        id=incident.id,
        title=incident.title,
        system_id=incident.system_id,
        system_level=incident.system_level,
        category=incident.category,
        severity=incident.severity,
        status=incident.status,
        detected_at=incident.detected_at.astimezone(dt.UTC),
        detected_ns=_ns(incident.detected_at),
        reported_at=incident.reported_at.astimezone(dt.UTC) if incident.reported_at else None,
        personal_data_breach=incident.personal_data_breach,
        alert_ids=list(incident.alert_ids),
        reports=[
            SentReportItem(
                kind=r.kind,
                sent_at=r.sent_at.astimezone(dt.UTC),
                reference=r.reference,
                recipient=r.recipient,
            )
            for r in incident.reports
        ],
    )


async def list_incidents(call: ApiCall) -> IncidentPage:
    after = call.text("after")
    position = parse_incident_cursor(after, "after") if after is not None else None
    system_id = call.text("system_id")
    limit = call.number("limit")
    scope = call.principal.scope()
    if scope is not None and (not scope or (system_id is not None and system_id not in scope)):
        return IncidentPage(items=[], next_cursor=None)  # nothing the caller may see
    since = None
    if position is not None:
        # Towards zero: no stored (whole-microsecond) time is skipped, and the bound stays
        # within a BIGINT at either end of the cursor's (clamped) range.
        micros = abs(position[0]) // 1000
        since = _EPOCH + dt.timedelta(microseconds=micros if position[0] >= 0 else -micros)
    found = await call.store.run(
        call.store.store.list_incidents, system_id=system_id, detected_from=since
    )
    page: list[IncidentItem] = []
    more = False
    for incident in found:
        item = incident_item(incident)
        if position is not None and (item.detected_ns, item.id) <= position:
            continue
        if scope is not None and item.system_id not in scope:
            continue
        if len(page) == limit:
            more = True
            break
        page.append(item)
    last = page[-1] if page else None
    return IncidentPage(
        items=page,
        next_cursor=incident_cursor(last.detected_ns, last.id) if more and last else None,
    )


async def get_incident(call: ApiCall) -> IncidentDetail:
    incident_id = call.text("incident_id") or ""
    incident = await call.store.run(call.store.store.get_incident, incident_id)
    if incident is None or not call.principal.can_see_system(incident.system_id):
        raise not_found("incident")
    return IncidentDetail(incident=incident_item(incident), record=incident)


ENDPOINTS = (
    ApiEndpoint(
        path="/api/v1/incidents",
        operation_id="listIncidents",
        summary="Incidents in the caller's scope, by detection time",
        description=(
            "Oldest detection first, then by id. Pass `next_cursor` back as `after` for the "
            "next page; it is null after the last page."
        ),
        handler=list_incidents,
        response=IncidentPage,
        tag="incidents",
        params=(
            Param("system_id", "only incidents of this information system"),
            LIMIT,
            Param(
                "after",
                "a next_cursor: the incidents after it",
                pattern=INCIDENT_CURSOR_PATTERN,
                max_length=150,
            ),
        ),
    ),
    ApiEndpoint(
        path="/api/v1/incidents/{incident_id}",
        operation_id="getIncident",
        summary="One incident: summary and full record",
        description="404 for an unknown id and for an incident outside the caller's scope.",
        handler=get_incident,
        response=IncidentDetail,
        tag="incidents",
        not_found=True,
        params=(Param("incident_id", "the incident's id", location="path"),),
    ),
)
