"""FortiGate (FortiOS) logs: `date=2026-11-30 time=10:00:00 devname="FG1" ... type="event"
subtype="system" action="Add" cfgpath="system.admin"`, every key=value kept under its own name.

The record's name is "type/subtype" (`event/system`, `traffic/forward`); the message is `msg`
(else `logdesc`); the host is `devname`; the time is `eventtime` (FortiOS 6.2 and later, in
seconds, micro- or nanoseconds) else the receive time.
"""

from __future__ import annotations

import re
from typing import Final

from .record import DeviceRecord, Envelope, RefusalError

_PAIR: Final = re.compile(r'\s*([A-Za-z_][\w-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
# A FortiGate message starts with date= (the default) or logver=/eventtime= (some templates),
# after an optional syslog header added by a relay.
_START: Final = re.compile(r"(?:^|\s)(date|logver|eventtime|devname)=")
_LEVELS: Final = frozenset(
    {"emergency", "alert", "critical", "error", "warning", "notice", "information", "debug"}
)
_SEVERITY: Final = {"emergency": "emerg", "critical": "crit", "error": "err", "information": "info"}


def looks_like(text: str) -> bool:
    return _START.search(text) is not None and "logid=" in text


def parse(env: Envelope) -> DeviceRecord | None:
    """A FortiGate record; None when the text is not key=value pairs with a logid or type;
    RefusalError("malformed_fortigate") for an unterminated quote or text between pairs."""
    start = _START.search(env.text)
    if start is None:
        return None
    text = env.text[start.start() :].strip()
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None:
            raise RefusalError("malformed_fortigate")
        value = m[2]
        if value.startswith('"'):
            value = re.sub(r'\\(["\\])', r"\1", value[1:-1])
        fields[m[1]] = value
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if "type" not in fields and "logid" not in fields:
        return None
    level = fields.get("level", "")
    name = "/".join(p for p in (fields.get("type", ""), fields.get("subtype", "")) if p)
    return DeviceRecord(
        format="fortigate",
        vendor="fortinet",
        product="fortigate",
        name=name,
        message=fields.get("msg") or fields.get("logdesc", ""),
        hostname=fields.get("devname", ""),
        facility=env.facility,
        severity=_SEVERITY.get(level, level) if level in _LEVELS else env.severity,
        time_ns=_eventtime_ns(fields.get("eventtime", "")),
        fields=fields,
    )


def _eventtime_ns(value: str) -> int:
    if not value.isdigit():
        return 0
    n = int(value)
    for digits, scale in ((19, 1), (16, 1_000), (13, 1_000_000), (10, 1_000_000_000)):
        if len(value) == digits:
            return n * scale
    return 0
