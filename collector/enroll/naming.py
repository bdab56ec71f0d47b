"""Agent ids derived from host names when the token does not name one."""

from __future__ import annotations

import re
from collections.abc import Iterator

# The ingest stream's rule for agent ids (collector/ingest/service.py AGENT_ID_RE).
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
# Room for a "-NN" suffix within the 128-character limit.
_BASE_MAX = 100
MAX_SUFFIX = 99


def agent_id_from_hostname(hostname: str) -> str:
    """The host's short name made valid: `Web 01.tinh.gov.vn` -> `web-01`; `agent` if empty."""
    short = hostname.strip().split(".")[0].lower()
    cleaned = _INVALID.sub("-", short).strip("-._")[:_BASE_MAX].rstrip("-._")
    return cleaned or "agent"


def unique_candidates(base: str) -> Iterator[str]:
    """`base`, then `base-2` ... `base-99`: the first one free becomes the agent's id."""
    yield base
    for n in range(2, MAX_SUFFIX + 1):
        yield f"{base}-{n}"
