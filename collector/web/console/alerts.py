"""The alert pages: the filtered, paginated list, its live stream, one alert, and triage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse

from canhgac.fields import event_fields
from collector.metrics import CollectorMetrics
from collector.storage.base import StoredAlert
from collector.storage.worker import StoreWorker
from collector.triage.model import (
    ALERT_STATUSES,
    TRIAGE_ACTIONS,
    AlertQuery,
    TriageAction,
    TriageError,
)
from collector.web.auth.policy import Access, Principal, WebAuth, form_fields, requires
from collector.web.auth.users import Role
from collector.web.console.i18n import Translator
from collector.web.console.render import console, local_time, page, query_url, translator
from collector.web.live import AlertFilter, sse_stream

PAGE_SIZE = 50
HOUR_NS = 3600 * 10**9
SUPPRESS_PERIODS = {"1h": HOUR_NS, "8h": 8 * HOUR_NS, "24h": 24 * HOUR_NS, "7d": 168 * HOUR_NS}
CONSOLE_ROLES: tuple[Role, ...] = ("operator", "admin")
_ACTIONS: dict[str, TriageAction] = {a: a for a in TRIAGE_ACTIONS}


@dataclass(frozen=True)
class Filters:
    """The list's filters as GET parameters; bad values are ignored (shown as "any")."""

    severity: int = 0
    system: str = ""
    rule: str = ""
    status: str = ""
    host: str = ""

    @classmethod
    def parse(cls, request: Request) -> Filters:
        q = request.query_params
        sev = q.get("severity", "")
        status = q.get("status", "")
        return cls(
            severity=int(sev) if sev in {"1", "2", "3", "4", "5"} else 0,
            system=q.get("system", "").strip()[:200],
            rule=q.get("rule", "").strip()[:200],
            status=status if status in ALERT_STATUSES else "",
            host=q.get("host", "").strip()[:255],
        )

    def params(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "system": self.system,
            "rule": self.rule,
            "status": self.status,
            "host": self.host,
        }

    def query(self, before_row: int | None, limit: int) -> AlertQuery:
        return AlertQuery(
            min_severity=self.severity,
            system_id=self.system or None,
            rule_id=self.rule or None,
            status=self.status or None,
            host=self.host or None,
            before_row=before_row,
            limit=limit,
        )

    def live(self) -> AlertFilter:
        return AlertFilter(self.severity, self.system, self.rule, self.status, self.host)


def alert_json(stored: StoredAlert, t: Translator) -> str:
    """One alert for the live list: text only, the page inserts it with textContent."""
    a = stored.alert
    return json.dumps(
        {
            "id": a.id,
            "url": f"/alerts/{a.id}",
            "time": local_time(a.created_ns),
            "severity": int(a.severity),
            "severity_name": t(f"severity.{int(a.severity)}"),
            "rule": a.rule_title,
            "host": a.host,
            "system": a.system_id,
            "summary": a.summary,
            "status": t(f"status.{stored.status}"),
        },
        ensure_ascii=False,
    )


def _bad_request(request: Request, error_type: str = "bad_request") -> None:
    metrics: CollectorMetrics = request.app.state.metrics
    metrics.errors.labels(stage="console", error_type=error_type).inc()


def _store(request: Request) -> StoreWorker:
    store: StoreWorker = request.app.state.store
    return store


@requires(*CONSOLE_ROLES, login_redirect=True)
async def alert_list(request: Request) -> Response:
    filters = Filters.parse(request)
    before = request.query_params.get("before", "")
    # isdigit alone accepts "²", which int() refuses; a bad cursor shows the newest page.
    before_row = int(before) if before.isascii() and before.isdigit() else None
    store = _store(request)
    rows = await store.run(store.store.query_alerts, filters.query(before_row, PAGE_SIZE + 1))
    older = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        older = query_url("/alerts", {**filters.params(), "before": rows[-1].row_id})
    return page(
        request,
        "alerts.html",
        alerts=rows,
        filters=filters,
        statuses=ALERT_STATUSES,
        older=older,
        newest=query_url("/alerts", filters.params()) if before_row else "",
        stream_url=query_url("/alerts/stream", filters.params()),
        live=before_row is None,
    )


@requires(*CONSOLE_ROLES, login_redirect=True)
async def alert_stream(request: Request) -> Response:
    hub = console(request).hub
    if hub is None:
        return PlainTextResponse("live alerts are not available", status_code=404)
    principal: Principal = request.state.principal
    if not hub.has_room(principal.name):
        _bad_request(request, "too_many_streams")
        return PlainTextResponse(
            "too many live streams open", status_code=429, headers={"Retry-After": "60"}
        )
    t = translator(request)
    auth: WebAuth = request.app.state.auth
    access = Access(frozenset(CONSOLE_ROLES))

    async def still_allowed() -> bool:
        # The same check as at the start: a disabled user or an ended session is cut off.
        found = await auth.authenticate(request, access)
        return found is not None and found.role in access.roles

    sub = hub.subscribe(Filters.parse(request).live(), principal.name)
    return StreamingResponse(
        sse_stream(sub, lambda stored: alert_json(stored, t), still_allowed=still_allowed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _detail(store: StoreWorker, alert_id: str) -> dict[str, Any] | None:
    """Everything the detail page shows, read in one go on the store thread."""
    s = store.store
    stored = s.get_alert(alert_id)
    if stored is None:
        return None
    events = s.events_by_ids(list(stored.alert.event_ids))
    history = s.triage_history(alert_id)
    assignee = stored.assignee or next(
        (h.assignee for h in reversed(history) if h.action == "assign"), ""
    )
    return {
        "stored": stored,
        "a": stored.alert,
        "events": [
            (e.event.id, sorted((k, _text(v)) for k, v in event_fields(e.event).items()))
            for e in events
        ],
        "related": s.related_alerts(alert_id),
        "history": history,
        "assignee": assignee,
    }


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@requires(*CONSOLE_ROLES, login_redirect=True)
async def alert_detail(request: Request) -> Response:
    store = _store(request)
    found = await store.run(_detail, store, request.path_params["alert_id"])
    if found is None:
        return page(request, "message.html", 404, message=translator(request)("alert.not_found"))
    return page(
        request,
        "alert.html",
        actions=TRIAGE_ACTIONS,
        periods=list(SUPPRESS_PERIODS),
        **found,
    )


@requires(*CONSOLE_ROLES, login_redirect=True)
async def alert_triage(request: Request) -> Response:
    alert_id = request.path_params["alert_id"]
    form = await form_fields(request)
    action = _ACTIONS.get(form.get("action", ""))
    t = translator(request)
    if action is None:
        _bad_request(request)
        return page(request, "message.html", 400, message=t("alert.unknown_action"))
    now = console(request).clock_ns()
    until = 0
    if action == "suppress":
        period = SUPPRESS_PERIODS.get(form.get("period", ""))
        if period is None:
            _bad_request(request)
            return page(request, "message.html", 400, message=t("error.bad_request"))
        until = now + period
    principal: Principal = request.state.principal
    store = _store(request)
    try:
        result = await store.run(
            lambda: store.store.triage_alert(
                alert_id,
                action,
                actor=principal.name,
                at_ns=now,
                assignee=form.get("assignee", "").strip()[:200],
                comment=form.get("comment", "").strip()[:4000],
                until_ns=until,
            )
        )
    except TriageError as exc:
        _bad_request(request)
        return page(request, "message.html", 400, message=f"{t('error.bad_request')} {exc}")
    if result is None:
        return page(request, "message.html", 404, message=t("alert.not_found"))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
