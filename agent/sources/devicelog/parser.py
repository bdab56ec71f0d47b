"""One device message -> one `DeviceRecord`: the PRI part and syslog header, then the parser of
the sender's configured vendor, or the one the message's shape points to, else the generic one.

Shapes: `%FAC-SEV-MNEMONIC:` is Cisco, `%%01MOD/5/BRIEF` Huawei, key=value pairs with a logid
FortiGate, RFC 5424 structured data with Juniper's enterprise number Juniper. A message of a
configured vendor that does not have that vendor's shape is kept as a generic record (format
"syslog", the vendor still set) and counted as "fallback:<vendor>"; the generic record has the
syslog header's program, pid and message when there is one, else the whole text as message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from agent.sources.authlog.syslog import EnvelopeError, SyslogEnvelopeParser, SyslogLine

from . import cisco, fortigate, huawei, juniper
from .record import DeviceRecord, Envelope, RefusalError, Rfc5424, envelope, rfc5424

GENERIC: Final = "syslog"
_VENDOR_NAMES: Final = {"fortigate": "fortinet"}


class DeviceParser:
    """Stateless apart from the injected clock (for RFC 3164 timestamps without a year)."""

    def __init__(self, clock_ns: Callable[[], int]) -> None:
        self._header = SyslogEnvelopeParser(clock_ns)
        self.fallbacks: dict[str, int] = {}

    def parse(self, data: bytes, vendor: str = "auto") -> DeviceRecord:
        """The record in `data`; RefusalError with the reason when there is none."""
        env = envelope(data)
        sd = rfc5424(env.text)
        line: SyslogLine | None = None
        if sd is None:
            try:
                line = self._header.parse(env.text)
            except EnvelopeError:
                line = None
        record = self._vendor(env, sd, line, vendor)
        if record is not None:
            return record
        if vendor not in ("auto", "generic"):
            self.fallbacks[vendor] = self.fallbacks.get(vendor, 0) + 1
        return self._generic(env, sd, line, vendor)

    def _vendor(
        self, env: Envelope, sd: Rfc5424 | None, line: SyslogLine | None, vendor: str
    ) -> DeviceRecord | None:
        host = line.host if line is not None else ""
        if sd is not None and (
            vendor == "juniper" or (vendor == "auto" and juniper.is_junos_sd(sd))
        ):
            return juniper.from_rfc5424(env, sd, _iso_ns(sd.timestamp))
        if vendor == "juniper" and line is not None:
            return juniper.from_bsd(
                env, line.host, line.program, line.pid, line.message, line.time_ns
            )
        if vendor in ("auto", "fortigate") and fortigate.looks_like(env.text):
            return fortigate.parse(env)
        record = None
        if vendor in ("auto", "huawei") and "%%" in env.text:
            record = huawei.parse(env, host)
        if record is None and vendor in ("auto", "cisco") and "%" in env.text:
            record = cisco.parse(env, host)
        return record

    def _generic(
        self, env: Envelope, sd: Rfc5424 | None, line: SyslogLine | None, vendor: str
    ) -> DeviceRecord:
        named = "" if vendor in ("auto", "generic") else _VENDOR_NAMES.get(vendor, vendor)
        record = DeviceRecord(
            format=GENERIC,
            vendor=named,
            facility=env.facility,
            severity=env.severity,
            message=env.text,
        )
        if sd is not None:
            record.hostname, record.program, record.name = sd.host, sd.app, sd.msgid
            record.pid = int(sd.procid) if sd.procid.isascii() and sd.procid.isdigit() else 0
            record.message, record.time_ns = sd.message, _iso_ns(sd.timestamp)
            record.fields = dict(sd.params)
        elif line is not None:
            record.hostname, record.program, record.pid = line.host, line.program, line.pid
            record.message, record.time_ns = line.message, line.time_ns
        return record


def _iso_ns(timestamp: str) -> int:
    if not timestamp:
        return 0
    try:
        # fromisoformat reads up to microseconds; longer fractions are cut to six digits.
        head, dot, tail = timestamp.partition(".")
        if dot:
            digits = len(tail) - len(tail.lstrip("0123456789"))
            tail = tail[: min(digits, 6)] + tail[digits:]
            timestamp = f"{head}.{tail}"
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if when.tzinfo is None:
        return 0  # no zone: the device's local time is unknown here, use the receive time
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


__all__ = ["DeviceParser", "DeviceRecord", "RefusalError"]
