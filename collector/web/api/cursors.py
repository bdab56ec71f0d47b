"""Cursors: opaque to callers, but every string that matches their pattern decodes.

An alert cursor is a position in the alerts table (its row id, which only grows), so "the
alerts after this cursor" are exactly those stored since. An incident cursor is a detection
time and an incident id, the order incidents are listed in. Both are documented as opaque:
callers pass back what they were given. Their patterns are in the OpenAPI spec, and any string
matching one decodes, so a well-formed cursor is never refused.
"""

from __future__ import annotations

import re

from collector.audit.store import clamp
from collector.web.api.errors import bad_request

ALERT_CURSOR_PATTERN = r"^a[0-9]{1,18}$"
INCIDENT_CURSOR_PATTERN = r"^i-?[0-9]{1,19}\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ALERT = re.compile(ALERT_CURSOR_PATTERN)
_INCIDENT = re.compile(INCIDENT_CURSOR_PATTERN)


def alert_cursor(row_id: int) -> str:
    return f"a{row_id}"


def parse_alert_cursor(text: str, parameter: str) -> int:
    if not _ALERT.match(text):
        raise bad_request("not a cursor this endpoint gave", location=parameter)
    return int(text[1:])


def incident_cursor(detected_ns: int, incident_id: str) -> str:
    return f"i{detected_ns}.{incident_id}"


def parse_incident_cursor(text: str, parameter: str) -> tuple[int, str]:
    if not _INCIDENT.match(text):
        raise bad_request("not a cursor this endpoint gave", location=parameter)
    number, _, incident_id = text[1:].partition(".")
    # 19 digits can exceed a BIGINT: such a time compares like the furthest one stored.
    return clamp(int(number)), incident_id
