"""The OpenAPI 3.1 document of the API, built from the endpoint declarations and models.

Served at /api/v1/openapi.json and committed as docs/api/openapi.json (a test checks the two
agree). Regenerate the committed copy after changing an endpoint or a model:

    .venv/bin/python -m collector.web.api > docs/api/openapi.json
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from collector.web.api.cursors import ALERT_CURSOR_PATTERN
from collector.web.api.endpoint import ApiEndpoint
from collector.web.api.schemas import ErrorBody

SPEC_PATH = "/api/v1/openapi.json"
_REF = "#/components/schemas/{model}"
_DESCRIPTION = (
    "Read-only API of a Canh Gác collector for a contracted SOC (layer 2), assessors "
    "(layer 3) and scripts. Authenticate with an API token: `Authorization: Bearer cgk_...`. "
    "A soc or assessor token sees only the information systems it was given; anything else "
    "answers as if it did not exist (404, or absent from lists). Times are RFC 3339 in UTC, "
    "with exact nanoseconds in the `*_ns` fields. Requests are rate limited per token (429 "
    "with Retry-After). Alert cursors look like " + ALERT_CURSOR_PATTERN + " but are opaque: "
    "pass back what you were given."
)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
    }


def _text(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "description": description,
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    if headers:
        found["headers"] = headers
    return found


_RESPONSES: dict[str, Any] = {
    "BadRequest": _error("a parameter is malformed, out of range or unknown"),
    "Unauthorized": _text(
        "no credentials, or an unknown, expired or revoked token",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    ),
    "Forbidden": _text("the token's role may not use this endpoint"),
    "NotFound": _error("no such id, or not in the caller's scope"),
    "TooManyRequests": {
        **_error("the caller's rate limit is spent"),
        "headers": {
            "Retry-After": {
                "description": "seconds to wait",
                "schema": {"type": "integer", "minimum": 1},
                "required": True,
            }
        },
    },
}


def _operation(endpoint: ApiEndpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": endpoint.response.__doc__ or endpoint.summary,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=endpoint.response.__name__)}
                }
            },
        },
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
    }
    if endpoint.not_found:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    responses["429"] = {"$ref": "#/components/responses/TooManyRequests"}
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "description": endpoint.description,
        "tags": [endpoint.tag] if endpoint.tag else [],
        "responses": responses,
    }
    if endpoint.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.location == "path",
                "description": p.description,
                "schema": p.schema(),
            }
            for p in endpoint.params
        ]
    return operation


def build_spec(endpoints: Sequence[ApiEndpoint]) -> dict[str, Any]:
    """The OpenAPI document for `endpoints` (the spec route itself included)."""
    models: list[type[BaseModel]] = [ErrorBody]
    models += [endpoint.response for endpoint in endpoints]
    unique = list(dict.fromkeys(models))
    _, defs = models_json_schema([(m, "serialization") for m in unique], ref_template=_REF)
    paths: dict[str, Any] = {
        e.path: {"get": _operation(e)} for e in sorted(endpoints, key=lambda e: e.path)
    }
    paths[SPEC_PATH] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "tags": ["meta"],
            "responses": {
                "200": {
                    "description": "the OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Canh Gác collector API", "version": "1", "description": _DESCRIPTION},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token, cgk_...",
                }
            },
            "responses": _RESPONSES,
            "schemas": defs.get("$defs", {}),
        },
    }


def spec_text(spec: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, UTF-8, a final newline."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
