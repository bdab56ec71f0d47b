"""The read-only REST API for layer 2 (a contracted SOC) and scripts: /api/v1/..."""

from __future__ import annotations

from starlette.routing import BaseRoute


def api_routes() -> list[BaseRoute]:
    """Routes of the API. Endpoints reach the store as request.app.state.store (StoreWorker)."""
    return []
