"""The API's refusals: one JSON shape, one counter.

Every refusal the API itself decides (bad input, an id not found or out of scope, too many
requests) is an `ApiError`, answered as `{"error": <code>, "detail": <text>}` and counted in
`canhgac_collector_http_refused{reason}`, whose label is one of `REFUSAL_REASONS` so a caller
cannot grow the label set. Authentication and role refusals come from the policy wrapper
(collector/web/auth/policy.py) as plain text 401/403, before the API sees the request.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse

from canhgac.errors import CanhGacError

RefusalReason = Literal["bad_request", "not_found", "rate_limited"]
REFUSAL_REASONS: tuple[RefusalReason, ...] = ("bad_request", "not_found", "rate_limited")
_STATUS: dict[RefusalReason, int] = {"bad_request": 400, "not_found": 404, "rate_limited": 429}


class ApiError(CanhGacError):
    """A request the API refuses; `location` names the parameter at fault, when one is."""

    def __init__(
        self,
        reason: RefusalReason,
        detail: str,
        *,
        location: str | None = None,
        retry_after_s: int = 0,
    ) -> None:
        super().__init__(detail, location=location)
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def status_code(self) -> int:
        return _STATUS[self.reason]


def bad_request(detail: str, *, location: str | None = None) -> ApiError:
    return ApiError("bad_request", detail, location=location)


def not_found(what: str) -> ApiError:
    # The same answer for an unknown id and for one outside the caller's scope, so ids of
    # other systems do not leak.
    return ApiError("not_found", f"no such {what}")


def refusal_response(request: Request, error: ApiError) -> JSONResponse:
    """The JSON answer to a refusal, counted by reason."""
    request.app.state.metrics.http_refused.labels(reason=error.reason).inc()
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    return JSONResponse(
        {"error": error.reason, "detail": str(error)},
        status_code=error.status_code,
        headers=headers,
    )
