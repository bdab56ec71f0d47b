"""Juniper Junos messages, in structured-data form (RFC 5424, `set system syslog host ...
structured-data`) or in the BSD form:
* `<165>1 2026-11-30T10:00:00.123+07:00 mx1 mgd 3456 UI_CMDLINE_READ_LINE
  [junos@2636.1.1.1.2.29 username="admin" command="show configuration"] User 'admin', ...`
* `Nov 30 10:00:00 mx1 mgd[3456]: UI_CMDLINE_READ_LINE: User 'admin', command '...'`
* `Nov 30 10:00:00 mx1 /kernel: tcp_auth_ok: Packet from 10.0.0.1:179 missing MD5 digest`

The record's name is the event tag (`UI_CMDLINE_READ_LINE`), or "" where Junos writes none (the
kernel's messages); structured-data parameters become fields under their own names.
"""

from __future__ import annotations

import re
from typing import Final

from .record import DeviceRecord, Envelope, Rfc5424

# Juniper's IANA enterprise number, in every SD-ID Junos writes (`junos@2636...`).
JUNIPER_SD: Final = "@2636"
_TAG: Final = re.compile(r"(?P<tag>[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+): ?(?P<message>.*)", re.DOTALL)
_USER_COMMAND: Final = re.compile(r"User '(?P<username>[^']*)', command '(?P<command>.*)'")


def is_junos_sd(sd: Rfc5424 | None) -> bool:
    return sd is not None and any(JUNIPER_SD in i for i in sd.sd_ids)


def from_rfc5424(env: Envelope, sd: Rfc5424, time_ns: int) -> DeviceRecord:
    return _record(env, sd.host, sd.app, sd.procid, sd.msgid, sd.message, dict(sd.params), time_ns)


def from_bsd(
    env: Envelope, host: str, program: str, pid: int, message: str, time_ns: int
) -> DeviceRecord:
    tag = ""
    if m := _TAG.fullmatch(message):
        tag, message = m["tag"], m["message"]
    return _record(env, host, program, str(pid or ""), tag, message, {}, time_ns)


def _record(
    env: Envelope,
    host: str,
    program: str,
    procid: str,
    tag: str,
    message: str,
    fields: dict[str, str],
    time_ns: int,
) -> DeviceRecord:
    if tag == "UI_CMDLINE_READ_LINE" and (m := _USER_COMMAND.search(message)):
        fields.setdefault("username", m["username"])
        fields.setdefault("command", m["command"].strip())
    return DeviceRecord(
        format="juniper",
        vendor="juniper",
        product="junos",
        name=tag,
        program=program.removeprefix("/"),
        pid=int(procid) if procid.isascii() and procid.isdigit() else 0,
        message=message.strip(),
        hostname=host,
        facility=env.facility,
        severity=env.severity,
        time_ns=time_ns,
        fields=fields,
    )
