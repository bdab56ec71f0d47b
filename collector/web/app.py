"""The collector's HTTP side: the layer-1 console, the REST API, /healthz and /metrics.

Every route declares its roles (collector/web/auth/policy.py): the console
(collector/web/console) is for operator and admin, its /evidence page for assessor and admin
(a browser without a session is sent to /login), /metrics for soc and admin (bearer, or
basic with an API token as password; a soc sees only its contracted systems' samples of
metrics labelled by system), /healthz is public. It listens on loopback only by
default (http.listen).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.config import CollectorConfig
from collector.detection.control import ReloadSummary
from collector.dossiers.findings import Finding
from collector.dossiers.regime import Regime
from collector.metrics import CollectorMetrics, ScopedMetrics
from collector.storage.worker import StoreWorker
from collector.web.api import api_routes
from collector.web.api.ratelimit import install_api_limiter
from collector.web.auth.login import login_routes
from collector.web.auth.policy import Principal, WebAuth, public, requires, route_registry
from collector.web.auth.sessions import Clock, LoginRateLimiter, SessionSigner, load_or_create_key
from collector.web.console import console_routes
from collector.web.console.evidence import EvidenceExports
from collector.web.console.render import ConsoleContext
from collector.web.live import AlertHub


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
    hub: AlertHub | None = None,
    regime: Regime | None = None,
    findings: Callable[[], list[Finding]] = list,
    rules_status: Callable[[], ReloadSummary | None] = lambda: None,
    api_rate: float = 20.0,
    api_burst: int = 100,
    config: CollectorConfig | None = None,
) -> Starlette:
    """The app; its session key lives in state_dir, cookies are Secure unless on loopback.
    The console shows live alerts from `hub`, legal clocks by `regime`, the latest compliance
    `findings` and the detection's last `rules_status` (each optional). The REST API allows
    each caller `api_rate` requests per second with bursts of `api_burst` (config http.*).
    With the collector's `config`, assessors and admins can export evidence bundles from the
    console (/evidence); without it that page says it is not enabled."""

    @public
    async def healthz(request: Request) -> Response:
        ok = ready()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    @requires("soc", "admin", basic=True)
    async def metrics_page(request: Request) -> Response:
        principal: Principal = request.state.principal
        scope = principal.scope()
        view = metrics.registry if scope is None else ScopedMetrics(metrics.registry, scope)
        return Response(generate_latest(view), media_type=CONTENT_TYPE_LATEST)

    routes = [
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
    app.state.console = ConsoleContext(hub, regime, findings, rules_status, clock)
    app.state.evidence = EvidenceExports.from_config(config) if config is not None else None
    signer = SessionSigner(load_or_create_key(state_dir))
    app.state.auth = WebAuth(store, signer, secure_cookies=not is_loopback(listen), clock=clock)
    app.state.login_limiter = LoginRateLimiter(clock)
    install_api_limiter(app, api_rate, api_burst)
    return app
