"""The layer-1 console: server-rendered pages for the province's own team."""

from __future__ import annotations

from starlette.routing import BaseRoute


def console_routes() -> list[BaseRoute]:
    """Routes of the console. Endpoints reach the store as request.app.state.store."""
    return []
