"""Rendering console pages: the Jinja environment (autoescaping on), the language, the
Content-Security-Policy, and the context every page gets (who, which language, CSRF token)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from collector.detection.control import ReloadSummary
from collector.dossiers.clock import to_local
from collector.dossiers.findings import Finding
from collector.dossiers.regime import Regime
from collector.web.auth.policy import Principal
from collector.web.auth.sessions import CSRF_FIELD
from collector.web.console.i18n import LANG_COOKIE, Translator, pick_lang
from collector.web.live import AlertHub

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
# No inline script or style anywhere: everything comes from /static on this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class ConsoleContext:
    """What the console reads besides the store, handed over by build_app."""

    hub: AlertHub | None = None
    regime: Regime | None = None
    findings: Callable[[], list[Finding]] = list
    rules_status: Callable[[], ReloadSummary | None] = lambda: None
    clock_ns: Callable[[], int] = field(default=lambda: 0)


# Times are shown in Asia/Ho_Chi_Minh (dossiers.clock.to_local), which has kept +07:00 without
# daylight saving since 1975; each time says so, as an SOC reading it may work in UTC.
LOCAL_ZONE = "UTC+7"


def local_time(ns: int) -> str:
    if not ns:
        return "—"
    local = to_local(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC))
    return f"{local:%Y-%m-%d %H:%M:%S} ({LOCAL_ZONE})"


def local_minute(t: dt.datetime | None) -> str:
    return f"{to_local(t):%Y-%m-%d %H:%M} ({LOCAL_ZONE})" if t else "—"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = local_time
    env.filters["dtime"] = local_minute
    return env


ENV = _env()


def translator(request: Request) -> Translator:
    return Translator(
        pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    )


def query_url(path: str, params: Mapping[str, object]) -> str:
    kept = {k: str(v) for k, v in params.items() if v not in ("", None, 0)}
    return path + ("?" + urlencode(kept) if kept else "")


def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render `template` with the page context; CSP and no-store on every console page."""
    t = translator(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = ENV.get_template(template).render(
        t=t,
        lang=t.lang,
        other_lang="en" if t.lang == "vi" else "vi",
        here=here,
        principal=principal,
        csrf_field=CSRF_FIELD,
        csrf=principal.csrf if principal else "",
        app_name=request.app.state.name,
        **values,
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def console(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx
