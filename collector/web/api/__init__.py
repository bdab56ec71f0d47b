"""The read-only REST API for layer 2 (a contracted SOC), assessors and scripts: /api/v1/...

Each endpoint is declared once (endpoint.ApiEndpoint) in the module of what it serves
(alerts, incidents, inventory); `api_routes` serves them and spec.py describes them. Every
endpoint answers GET only, for the roles operator, soc, assessor and admin; soc and assessor
principals see only their systems (`Principal.scope`). The rate limit is per principal
(ratelimit.py; `install_api_limiter` sets the configured limits).
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.web.api import alerts, incidents, inventory
from collector.web.api.endpoint import ApiEndpoint, api_route
from collector.web.api.spec import SPEC_PATH, build_spec
from collector.web.auth.policy import public

ENDPOINTS: tuple[ApiEndpoint, ...] = (
    *alerts.ENDPOINTS,
    *incidents.ENDPOINTS,
    *inventory.ENDPOINTS,
)


@functools.cache
def openapi_spec() -> dict[str, Any]:
    return build_spec(ENDPOINTS)


@public  # the document describes the API; it holds no data
async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_spec())


def api_routes() -> list[BaseRoute]:
    """Routes of the API. Endpoints reach the store as request.app.state.store (StoreWorker)."""
    return [*(api_route(e) for e in ENDPOINTS), Route(SPEC_PATH, openapi_json, methods=["GET"])]
