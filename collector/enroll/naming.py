"""Agent ids: the rule they follow, and ids derived from host names when the token names none."""

from __future__ import annotations

import re
from collections.abc import Iterator

# The ingest stream's rule for agent ids (collector/ingest/service.py AGENT_ID_RE).
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# An enrolled agent's id is its certificate's CN, which X.509 limits to 64 characters.
MAX_ENROLLED_ID = 64
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
MAX_SUFFIX = 99
# Room for a "-NN" suffix within the CN limit.
_BASE_MAX = MAX_ENROLLED_ID - 4


def enrollable(agent_id: str) -> bool:
    """Whether an agent may enroll with this id: the stream's rule, and short enough for a CN."""
    return bool(AGENT_ID_RE.match(agent_id)) and len(agent_id) <= MAX_ENROLLED_ID


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
