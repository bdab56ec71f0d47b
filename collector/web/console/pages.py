"""The console's other pages: incidents and their legal clocks, agents (and revoking one),
systems and their findings, rules, the audit trail, and the language switch."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from canhgac.v1 import events_pb2
from collector.audit.model import AuditEntry, AuditRecord
from collector.dossiers.incidents import Incident, IncidentClock
from collector.storage.base import AgentRecord, Store
from collector.storage.worker import StoreWorker
from collector.triage.model import AlertQuery
from collector.web.auth.policy import Principal, requires
from collector.web.console.alerts import CONSOLE_ROLES
from collector.web.console.i18n import LANG_COOKIE, LANGS
from collector.web.console.render import console, page, query_url, translator

NS = 10**9
LATE_S, SILENT_S = 120, 600  # an agent heartbeats every few seconds
HIT_SCAN_LIMIT = 10_000  # alerts read to count hits per rule; beyond, the counts say "≥"
AUDIT_PAGE = 50
AUDIT_SCAN_WINDOWS = 25  # windows read per page at most, so a rare filter cannot read it all


def _store(request: Request) -> StoreWorker:
    store: StoreWorker = request.app.state.store
    return store


def _safe_next(target: str) -> str:
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/alerts"


@requires(*CONSOLE_ROLES, "assessor", login_redirect=True)
async def switch_lang(request: Request) -> Response:
    lang = request.query_params.get("to", "")
    response = RedirectResponse(_safe_next(request.query_params.get("next", "/")), 303)
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
    return response


@requires(*CONSOLE_ROLES, "assessor", login_redirect=True)
async def root(request: Request) -> Response:
    """Each role's home: the alerts, or for an assessor the only page it may use."""
    principal: Principal = request.state.principal
    home = "/evidence" if principal.role == "assessor" else "/alerts"
    return RedirectResponse(home, status_code=303)


# ---- incidents

INCIDENTS_PER_PAGE = 50


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    clocks: tuple[IncidentClock, ...]

    @property
    def overdue(self) -> list[IncidentClock]:
        return [c for c in self.clocks if c.state == "missed" or (c.state == "due" and c.immediate)]


def _now(request: Request) -> dt.datetime:
    return dt.datetime.fromtimestamp(console(request).clock_ns() / NS, dt.UTC)


def _view(request: Request, incident: Incident) -> IncidentView:
    regime = console(request).regime
    clocks = incident.deadlines(regime, now=_now(request)) if regime else ()
    return IncidentView(incident, clocks)


@requires(*CONSOLE_ROLES, login_redirect=True)
async def incident_list(request: Request) -> Response:
    store = _store(request)
    incidents = await store.run(store.store.list_incidents)
    text = request.query_params.get("page", "1")
    number = int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 1
    pages = max(1, -(-len(incidents) // INCIDENTS_PER_PAGE))
    number = min(max(number, 1), pages)
    # Newest first, one page of them: the deadlines are worked out only for those shown.
    end = len(incidents) - (number - 1) * INCIDENTS_PER_PAGE
    shown = incidents[max(0, end - INCIDENTS_PER_PAGE) : end]
    views = [_view(request, i) for i in reversed(shown)]
    return page(
        request,
        "incidents.html",
        views=views,
        regime=console(request).regime,
        newest="/incidents" if number > 1 else "",
        older=f"/incidents?page={number + 1}" if number < pages else "",
    )


@requires(*CONSOLE_ROLES, login_redirect=True)
async def incident_detail(request: Request) -> Response:
    store = _store(request)
    incident = await store.run(store.store.get_incident, request.path_params["incident_id"])
    if incident is None:
        t = translator(request)
        return page(request, "message.html", 404, message=t("incident.not_found"))
    alerts = await store.run(lambda: [store.store.get_alert(i) for i in incident.alert_ids])
    return page(
        request,
        "incident.html",
        view=_view(request, incident),
        alerts=[a for a in alerts if a is not None],
        regime=console(request).regime,
    )


# ---- agents


@dataclass(frozen=True)
class AgentView:
    record: AgentRecord
    status: events_pb2.AgentStatus | None
    health: str

    @property
    def drops(self) -> int:
        return sum(d.count for d in self.status.drops) if self.status else 0


def _agent_view(record: AgentRecord, now_ns: int) -> AgentView:
    status = None
    if record.status:
        try:
            status = events_pb2.AgentStatus.FromString(record.status)
        except DecodeError:
            status = None
    if not record.last_seen_ns:
        health = "never"
    else:
        age = (now_ns - record.last_seen_ns) / NS
        health = "ok" if age < LATE_S else "late" if age < SILENT_S else "silent"
    return AgentView(record, status, health)


@requires(*CONSOLE_ROLES, login_redirect=True)
async def agent_list(request: Request) -> Response:
    store = _store(request)
    agents = await store.run(store.store.list_agents)
    now = console(request).clock_ns()
    return page(request, "agents.html", agents=[_agent_view(a, now) for a in agents])


@requires("admin", login_redirect=True)
async def agent_revoke_confirm(request: Request) -> Response:
    store = _store(request)
    agent = await store.run(store.store.get_agent, request.path_params["agent_id"])
    if agent is None:
        return page(request, "message.html", 404, message=translator(request)("agents.not_found"))
    return page(request, "revoke.html", agent=agent)


@requires("admin", login_redirect=True)
async def agent_revoke(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    principal: Principal = request.state.principal
    now = console(request).clock_ns()

    def revoke(store: Store) -> int | None:
        revoked = store.revoke_agent(agent_id, now)
        if revoked is not None:
            entry = AuditEntry(principal.name, "agent.revoke", agent_id, {"certificates": revoked})
            store.append_audit(entry, at_ns=now)
        return revoked

    store = _store(request)
    if await store.run(revoke, store.store) is None:
        return page(request, "message.html", 404, message=translator(request)("agents.not_found"))
    return RedirectResponse("/agents", status_code=303)


# ---- systems


@requires(*CONSOLE_ROLES, login_redirect=True)
async def system_list(request: Request) -> Response:
    store = _store(request)

    def read(s: Store) -> list[tuple[object, str]]:
        return [(sys_, (s.get_dossier(sys_.id) or _NO_DOSSIER).status) for sys_ in s.list_systems()]

    rows = await store.run(read, store.store)
    findings = Counter(f.system_id for f in console(request).findings() if f.system_id)
    return page(request, "systems.html", rows=rows, finding_counts=findings)


class _NoDossier:
    status = "—"


_NO_DOSSIER = _NoDossier()


@requires(*CONSOLE_ROLES, login_redirect=True)
async def system_detail(request: Request) -> Response:
    system_id = request.path_params["system_id"]
    store = _store(request)
    system = await store.run(store.store.get_system, system_id)
    if system is None:
        return page(request, "message.html", 404, message=translator(request)("system.not_found"))
    dossier = await store.run(store.store.get_dossier, system_id)
    findings = [f for f in console(request).findings() if f.system_id == system_id]
    return page(request, "system.html", system=system, dossier=dossier, findings=findings)


# ---- rules


def _hit_counts(store: Store) -> tuple[Counter[str], bool]:
    """Alerts per rule id over the newest HIT_SCAN_LIMIT alerts; True when capped."""
    counts: Counter[str] = Counter()
    before: int | None = None
    seen = 0
    while seen < HIT_SCAN_LIMIT:
        rows = store.query_alerts(AlertQuery(before_row=before, limit=500))
        if not rows:
            return counts, False
        counts.update(r.alert.rule_id for r in rows)
        seen += len(rows)
        before = rows[-1].row_id
    return counts, True


@requires(*CONSOLE_ROLES, login_redirect=True)
async def rule_list(request: Request) -> Response:
    store = _store(request)
    hits, capped = await store.run(_hit_counts, store.store)
    summary = console(request).rules_status()
    return page(request, "rules.html", summary=summary, hits=hits, capped=capped)


# ---- audit


def audit_page(
    store: Store,
    before_seq: int | None,
    actor: str | None,
    action: str | None,
    limit: int,
    max_windows: int = AUDIT_SCAN_WINDOWS,
) -> tuple[list[AuditRecord], int]:
    """The newest `limit` records before `before_seq` (newest first), filtered, and the seq
    to continue before when the page is short only because `max_windows` were read (else 0).
    The store reads forwards from a seq, so this reads windows backwards until the page is
    full, the log's start, or its budget."""
    last = store.last_audit_record()
    top = min(before_seq or (last.seq + 1 if last else 1), (last.seq + 1) if last else 1)
    found: list[AuditRecord] = []
    window = max(limit * 4, 200)
    for _ in range(max_windows):
        if top <= 1 or len(found) >= limit:
            break
        low = max(0, top - 1 - window)
        records = store.audit_records(
            after_seq=low, limit=window, actor=actor, action_prefix=action
        )
        found.extend(reversed([r for r in records if r.seq < top]))
        top = low + 1
    return found[:limit], top if top > 1 and len(found) < limit else 0


@requires(*CONSOLE_ROLES, login_redirect=True)
async def audit_list(request: Request) -> Response:
    q = request.query_params
    actor, action = q.get("actor", "").strip()[:200], q.get("action", "").strip()[:200]
    before = q.get("before", "")
    store = _store(request)
    records, resume = await store.run(
        audit_page,
        store.store,
        int(before) if before.isascii() and before.isdigit() else None,
        actor or None,
        action or None,
        AUDIT_PAGE + 1,
    )
    if len(records) > AUDIT_PAGE:
        records = records[:AUDIT_PAGE]
        resume = records[-1].seq
    older = ""
    if resume:
        older = query_url("/audit", {"actor": actor, "action": action, "before": resume})
    return page(request, "audit.html", records=records, actor=actor, action=action, older=older)
