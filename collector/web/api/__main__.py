"""`python -m collector.web.api`: print the OpenAPI document (docs/api/openapi.json)."""

from __future__ import annotations

from collector.web.api import ENDPOINTS
from collector.web.api.spec import build_spec, spec_text

print(spec_text(build_spec(ENDPOINTS)), end="")
