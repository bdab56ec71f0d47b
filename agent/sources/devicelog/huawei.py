"""Huawei VRP messages: `HOST %%01SHELL/5/CMDRECORD(s)[0]:Recorded command information.
(Task=VT0, Ip=10.0.0.9, User=admin, Command="display current-configuration", Result=Success)`.

The record's name is "MODULE/SEVERITY/BRIEF" (`SHELL/5/CMDRECORD`); the module is the program;
the trailing (Key=Value, ...) list becomes fields under its own names, with the module and
brief as `module` and `brief`.
"""

from __future__ import annotations

import re
from typing import Final

from agent.sources.authlog.syslog import SEVERITIES

from .record import DeviceRecord, Envelope, paren_params

_HEADER: Final = re.compile(
    r"(?:(?P<host>[^\s%]+) )?%%(?P<version>\d\d)(?P<module>[A-Za-z][\w-]*)/(?P<severity>[0-7])/"
    r"(?P<brief>[A-Za-z][\w-]*)(?:\((?P<type>[a-z]+)\))?(?:\[(?P<seq>\d+)\])?:\s?(?P<message>.*)",
    re.DOTALL,
)


def parse(env: Envelope, header_host: str = "") -> DeviceRecord | None:
    m = _HEADER.search(env.text)
    if m is None:
        return None
    module, brief = m["module"], m["brief"]
    message = m["message"].strip()
    fields = {"module": module, "brief": brief} | paren_params(message)
    return DeviceRecord(
        format="huawei",
        vendor="huawei",
        product="vrp",
        name=f"{module}/{m['severity']}/{brief}",
        program=module,
        message=message,
        hostname=header_host or m["host"] or "",
        facility=env.facility,
        severity=SEVERITIES[int(m["severity"])],
        fields=fields,
    )
