"""The collector's HTTP side: a first console page, /healthz and /metrics.

This is the seed of the layer-1 console and the layer-2 metrics endpoint. Every route declares
its roles (collector/web/auth/policy.py): / is for operator and admin (a browser without a
session is sent to /login), /metrics for soc and admin (bearer, or basic with an API token as
password), /healthz is public. It still listens on loopback only by default (http.listen).
"""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from collector.detection.worker import SEVERITY_NAMES
from collector.metrics import CollectorMetrics
from collector.storage.worker import StoreWorker
from collector.web.api import api_routes
from collector.web.auth.login import login_routes
from collector.web.auth.policy import WebAuth, public, requires, route_registry
from collector.web.auth.sessions import Clock, LoginRateLimiter, SessionSigner, load_or_create_key
from collector.web.console import console_routes

PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Canh Gác</title>
<meta http-equiv="refresh" content="5">
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>Canh Gác — {name}</h1>
<h2>Cảnh báo / Alerts</h2>
<table><tr><th>Thời gian / Time</th><th>Mức / Severity</th><th>Quy tắc / Rule</th>
<th>Máy / Host</th><th>Tóm tắt / Summary</th><th>Trạng thái / Status</th></tr>{alerts}</table>
<h2>Tác tử / Agents</h2>
<table><tr><th>Agent</th><th>Host</th><th>Version</th><th>Last seen</th><th>Last seq</th></tr>
{agents}</table></body></html>"""


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(*cells: object) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(
    name: str,
    store: StoreWorker,
    metrics: CollectorMetrics,
    ready: Callable[[], bool],
    *,
    state_dir: Path,
    listen: str = "127.0.0.1:0",
    clock: Clock = time.time_ns,
) -> Starlette:
    """The app; its session key lives in state_dir, cookies are Secure unless on loopback."""

    @requires("operator", "admin", login_redirect=True)
    async def index(request: Request) -> Response:
        alerts = await store.run(store.store.recent_alerts, 50)
        agents = await store.run(store.store.list_agents)
        seqs = await store.run(
            lambda: {g.agent_id: store.store.last_seq(g.agent_id) for g in agents}
        )
        alert_rows = "".join(
            _row(
                _time(a.alert.created_ns),
                SEVERITY_NAMES.get(a.alert.severity, "unknown"),
                a.alert.rule_title,
                a.alert.host,
                a.alert.summary,
                a.status,
            )
            for a in reversed(alerts)
        )
        agent_rows = "".join(
            _row(g.agent_id, g.hostname, g.version, _time(g.last_seen_ns), seqs[g.agent_id])
            for g in agents
        )
        body = PAGE.format(name=html.escape(name), alerts=alert_rows, agents=agent_rows)
        return HTMLResponse(body)

    @public
    async def healthz(request: Request) -> Response:
        ok = ready()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    @requires("soc", "admin", basic=True)
    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/metrics", metrics_page),
        *login_routes(),
        *api_routes(),
        *console_routes(),
    ]
    route_registry(routes)  # refuses a route that declared no access
    app = Starlette(routes=routes)
    app.state.store = store
    app.state.metrics = metrics
    app.state.name = name
    signer = SessionSigner(load_or_create_key(state_dir))
    app.state.auth = WebAuth(store, signer, secure_cookies=not is_loopback(listen), clock=clock)
    app.state.login_limiter = LoginRateLimiter(clock)
    return app
