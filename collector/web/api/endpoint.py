"""How an API endpoint is declared: once, for both the route and the OpenAPI spec.

An `ApiEndpoint` names its path, its parameters (`Param`), its response model and its handler.
`api_route` turns it into a Starlette route behind `@requires` (every API role, GET only),
the per-principal rate limit, and the parsing of its parameters; spec.py turns the same
declaration into the OpenAPI document. A handler receives an `ApiCall` with the parsed values
and returns a pydantic model, or raises `ApiError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.storage.worker import StoreWorker
from collector.web.api.errors import ApiError, bad_request, refusal_response
from collector.web.api.ratelimit import limiter_of
from collector.web.auth.policy import Principal, requires
from collector.web.auth.users import Role

# Read-only for every role: layer 1 (operator), 2 (soc), 3 (assessor) and admin.
API_ROLES: tuple[Role, ...] = ("operator", "soc", "assessor", "admin")
ParamValue = str | int | None


@dataclass(frozen=True)
class Param:
    """One query or path parameter: its JSON schema is derived from these fields."""

    name: str
    description: str
    kind: Literal["string", "integer"] = "string"
    location: Literal["query", "path"] = "query"
    enum: tuple[str, ...] = ()
    pattern: str = ""
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None
    max_length: int = 256

    def schema(self) -> dict[str, Any]:
        if self.kind == "integer":
            found: dict[str, Any] = {"type": "integer"}
            for key, value in (
                ("minimum", self.minimum),
                ("maximum", self.maximum),
                ("default", self.default),
            ):
                if value is not None:
                    found[key] = value
            return found
        if self.enum:
            return {"type": "string", "enum": list(self.enum)}
        found = {"type": "string", "minLength": 1, "maxLength": self.max_length}
        if self.pattern:
            found["pattern"] = self.pattern
        return found

    def parse(self, text: str) -> str | int:
        where = f"{self.location} parameter {self.name}"
        if self.kind == "integer":
            try:
                number = int(text)
            except ValueError:
                raise bad_request("expected an integer", location=where) from None
            low_ok = self.minimum is None or number >= self.minimum
            high_ok = self.maximum is None or number <= self.maximum
            if not (low_ok and high_ok):
                raise bad_request(
                    f"expected {self.minimum}..{self.maximum}, not {number}", location=where
                )
            return number
        if self.enum and text not in self.enum:
            raise bad_request(f"expected one of {', '.join(self.enum)}", location=where)
        if not self.enum and not 1 <= len(text) <= self.max_length:
            raise bad_request(f"expected 1 to {self.max_length} characters", location=where)
        return text


@dataclass(frozen=True)
class ApiCall:
    """What a handler gets: who calls, the parsed parameters, the store."""

    request: Request
    principal: Principal
    params: dict[str, ParamValue]
    store: StoreWorker

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def number(self, name: str) -> int:
        value = self.params.get(name)
        assert isinstance(value, int), name  # declared as an integer with a default
        return value


Handler = Callable[[ApiCall], Awaitable[BaseModel]]


@dataclass(frozen=True)
class ApiEndpoint:
    """One GET endpoint of the API, as served and as described in the OpenAPI spec."""

    path: str
    operation_id: str
    summary: str
    description: str
    handler: Handler
    response: type[BaseModel]
    params: Sequence[Param] = ()
    tag: str = ""
    not_found: bool = False  # whether 404 is a documented answer (endpoints with an id)


def _parse_params(endpoint: ApiEndpoint, request: Request) -> dict[str, ParamValue]:
    declared = {p.name for p in endpoint.params if p.location == "query"}
    unknown = sorted(set(request.query_params.keys()) - declared)
    if unknown:
        raise bad_request(f"unknown query parameter {unknown[0]!r}", location="query")
    values: dict[str, ParamValue] = {}
    for param in endpoint.params:
        if param.location == "path":
            raw: str | None = request.path_params.get(param.name)
        else:
            found = request.query_params.getlist(param.name)
            if len(found) > 1:
                raise bad_request("given more than once", location=f"query parameter {param.name}")
            raw = found[0] if found else None
        values[param.name] = param.default if raw is None else param.parse(raw)
    return values


def api_route(endpoint: ApiEndpoint) -> Route:
    """The Starlette route serving `endpoint`."""

    @requires(*API_ROLES)
    async def serve(request: Request) -> Response:
        principal: Principal = request.state.principal
        try:
            wait_s = limiter_of(request.app).take(principal.name)
            if wait_s:
                raise ApiError(
                    "rate_limited", "too many requests; retry later", retry_after_s=wait_s
                )
            call = ApiCall(
                request, principal, _parse_params(endpoint, request), request.app.state.store
            )
            body = await endpoint.handler(call)
        except ApiError as exc:
            return refusal_response(request, exc)
        return JSONResponse(body.model_dump(mode="json"))

    serve.__name__ = serve.__qualname__ = endpoint.operation_id
    return Route(endpoint.path, serve, methods=["GET"])
