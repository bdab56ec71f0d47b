"""GET /api/v1/alerts and /api/v1/alerts/{alert_id}: alerts in the caller's scope.

Without a cursor the list is the newest alerts first. `after` pulls forwards, oldest first:
"every alert stored since this cursor", the loop a SOC's poller runs (each alert is seen
exactly once, however many are stored between pulls, because the cursor is a position in
the store's insertion order). `before` pages back, newest first.
"""

from __future__ import annotations

from collector.detection.worker import SEVERITY_NAMES
from collector.storage.base import StoredAlert
from collector.triage.model import ALERT_STATUSES, MAX_ALERT_QUERY_LIMIT, AlertQuery, TriageEntry
from collector.web.api.cursors import ALERT_CURSOR_PATTERN, alert_cursor, parse_alert_cursor
from collector.web.api.endpoint import ApiCall, ApiEndpoint, Param
from collector.web.api.errors import not_found
from collector.web.api.schemas import AlertDetail, AlertItem, AlertPage, TriageItem, utc

SEVERITY_BY_NAME = {name: level for level, name in SEVERITY_NAMES.items()}
LIMIT = Param(
    "limit",
    "how many items at most",
    kind="integer",
    minimum=1,
    default=100,
    maximum=MAX_ALERT_QUERY_LIMIT,
)


def alert_item(stored: StoredAlert) -> AlertItem:
    a = stored.alert
    return AlertItem(
        id=a.id,
        rule_id=a.rule_id,
        rule_title=a.rule_title,
        severity=SEVERITY_NAMES.get(a.severity, "unknown"),
        severity_level=int(a.severity),
        status=stored.status,
        created=utc(a.created_ns),
        created_ns=a.created_ns,
        first_seen=utc(a.first_seen_ns),
        first_seen_ns=a.first_seen_ns,
        last_seen=utc(a.last_seen_ns),
        last_seen_ns=a.last_seen_ns,
        agent_id=a.agent_id,
        host=a.host,
        system_id=a.system_id,
        system_level=a.system_level,
        category=a.category,
        mitre_techniques=list(a.mitre_techniques),
        group=dict(a.group),
        event_ids=list(a.event_ids),
        event_count=a.event_count,
        summary=a.summary,
        origin=a.origin,
        incident_id=a.incident_id,
    )


def triage_item(entry: TriageEntry) -> TriageItem:
    return TriageItem(
        at=utc(entry.at_ns),
        at_ns=entry.at_ns,
        actor=entry.actor,
        action=entry.action,
        status_after=entry.status_after,
        assignee=entry.assignee,
        comment=entry.comment,
        until=utc(entry.until_ns),
        until_ns=entry.until_ns,
    )


async def list_alerts(call: ApiCall) -> AlertPage:
    after = call.text("after")
    before = call.text("before")
    after_row = parse_alert_cursor(after, "after") if after is not None else None
    before_row = parse_alert_cursor(before, "before") if before is not None else None
    if after_row is not None:
        before_row = None  # `after` wins, as in AlertQuery
    severity = call.text("min_severity")
    query = AlertQuery(
        min_severity=SEVERITY_BY_NAME[severity] if severity else 0,
        system_id=call.text("system_id"),
        rule_id=call.text("rule_id"),
        status=call.text("status"),
        host=call.text("host"),
        systems=call.principal.scope(),
        after_row=after_row,
        before_row=before_row,
        limit=call.number("limit"),
    )
    found = await call.store.run(call.store.store.query_alerts, query)
    rows = [s.row_id for s in found]
    if rows:
        next_row = max(rows)
    elif after_row is not None:
        next_row = after_row  # nothing new: keep the place
    else:
        next_row = max(0, (before_row or 1) - 1)
    older = after_row is None and len(found) == query.limit
    return AlertPage(
        items=[alert_item(s) for s in found],
        next_cursor=alert_cursor(next_row),
        prev_cursor=alert_cursor(min(rows)) if older else None,
    )


async def get_alert(call: ApiCall) -> AlertDetail:
    alert_id = call.text("alert_id") or ""
    stored = await call.store.run(call.store.store.get_alert, alert_id)
    if stored is None or not call.principal.can_see_system(stored.alert.system_id):
        raise not_found("alert")
    history = await call.store.run(call.store.store.triage_history, alert_id)
    return AlertDetail(alert=alert_item(stored), triage=[triage_item(e) for e in history])


ENDPOINTS = (
    ApiEndpoint(
        path="/api/v1/alerts",
        operation_id="listAlerts",
        summary="Alerts in the caller's scope",
        description=(
            "Newest first without a cursor. `after` pulls forwards, oldest first: only alerts "
            "stored after the cursor, each exactly once across pulls; keep `next_cursor` and "
            "pass it back as `after`. `before` (a `prev_cursor`) pages back, newest first."
        ),
        handler=list_alerts,
        response=AlertPage,
        tag="alerts",
        params=(
            Param(
                "min_severity",
                "only alerts at least this severe",
                enum=tuple(SEVERITY_NAMES[k] for k in sorted(SEVERITY_NAMES)),
            ),
            Param("system_id", "only alerts of this information system"),
            Param("rule_id", "only alerts of this detection rule"),
            Param("status", "only alerts in this triage status", enum=ALERT_STATUSES),
            Param("host", "only alerts of this host name"),
            LIMIT,
            Param(
                "after",
                "a next_cursor: only alerts stored after it, oldest first",
                pattern=ALERT_CURSOR_PATTERN,
                max_length=19,
            ),
            Param(
                "before",
                "a prev_cursor: alerts stored before it, newest first (ignored with after)",
                pattern=ALERT_CURSOR_PATTERN,
                max_length=19,
            ),
        ),
    ),
    ApiEndpoint(
        path="/api/v1/alerts/{alert_id}",
        operation_id="getAlert",
        summary="One alert and its triage history",
        description="404 for an unknown id and for an alert outside the caller's scope alike.",
        handler=get_alert,
        response=AlertDetail,
        tag="alerts",
        not_found=True,
        params=(Param("alert_id", "the alert's id", location="path"),),
    ),
)
