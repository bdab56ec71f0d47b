"""The layer-1 console: server-rendered pages for the province's own team.

Pages are Jinja templates (collector/web/templates) with autoescaping, a CSS file and a little
plain JavaScript from /static (no inline script: the pages carry a strict CSP). Operators and
admins use it; revoking an agent is for admins only. Assessors (and admins) have one page,
the evidence export (evidence.py). Alerts arrive live over server-sent events
(collector/web/live.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from collector.web.auth.policy import public
from collector.web.console import alerts, evidence, pages
from collector.web.console.render import STATIC

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@public
async def static_file(request: Request) -> Response:
    """Only the files shipped in collector/web/static, by plain name (no path walking)."""
    name = request.path_params["name"]
    path = STATIC / name
    kind = _STATIC_TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or kind is None or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(
        path,
        media_type=kind,
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def console_routes() -> list[BaseRoute]:
    """Routes of the console. Endpoints reach the store as request.app.state.store and the
    rest as request.app.state.console (render.ConsoleContext)."""
    return [
        Route("/", pages.root, methods=["GET"]),
        Route("/lang", pages.switch_lang, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
        Route("/alerts", alerts.alert_list, methods=["GET"]),
        Route("/alerts/stream", alerts.alert_stream, methods=["GET"]),
        Route("/alerts/{alert_id}", alerts.alert_detail, methods=["GET"]),
        Route("/alerts/{alert_id}/triage", alerts.alert_triage, methods=["POST"]),
        Route("/incidents", pages.incident_list, methods=["GET"]),
        Route("/incidents/{incident_id}", pages.incident_detail, methods=["GET"]),
        Route("/agents", pages.agent_list, methods=["GET"]),
        Route("/agents/{agent_id}/revoke", pages.agent_revoke_confirm, methods=["GET"]),
        Route("/agents/{agent_id}/revoke", pages.agent_revoke, methods=["POST"]),
        Route("/systems", pages.system_list, methods=["GET"]),
        Route("/systems/{system_id}", pages.system_detail, methods=["GET"]),
        Route("/rules", pages.rule_list, methods=["GET"]),
        Route("/audit", pages.audit_list, methods=["GET"]),
        Route("/evidence", evidence.evidence_page, methods=["GET"]),
        Route("/evidence/export", evidence.evidence_export, methods=["POST"]),
    ]
