"""Cisco IOS / IOS-XE / NX-OS and ASA messages: `%FACILITY-SEVERITY-MNEMONIC: text`.

The record's name is "FACILITY-SEVERITY-MNEMONIC" (`SEC-6-IPACCESSLOGP`, `ASA-4-106023`). The
messages rules ask about get fields of their own, under the names FortiGate uses for the same
things (user, srcip, srcport, dstip, dstport, proto, action) so one rule can ask both:
* command accounting (the Sigma `service: aaa` records): IOS `PARSER-5-CFGLOG_LOGGEDCMD`
  (`archive / log config / notify syslog`) and ASA 111008, 111009, 111010 give user and command;
* logins: IOS `SEC_LOGIN-4-LOGIN_FAILED` / `SEC_LOGIN-5-LOGIN_SUCCESS`, ASA 605004 / 605005,
  113015 give user, srcip, status (failure or success);
* access lists: IOS `SEC-6-IPACCESSLOGP` and ASA 106023, 106100 give action, proto, addresses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from agent.sources.authlog.syslog import SEVERITIES

from .record import DeviceRecord, Envelope

_MNEMONIC: Final = re.compile(
    r"%(?P<facility>[A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)*?)-(?P<severity>[0-7])-(?P<mnemonic>[A-Z0-9_]+)"
    r"\s*:\s?(?P<message>.*)",
    re.DOTALL,
)
# What may stand before the mnemonic: "[seq:] [host] [timestamp]: " in any combination.
_HOSTNAME: Final = re.compile(
    r"(?:[A-Z][a-z]{2} +\d+ (?:\d{4} )?[\d:]{8} )?(?P<host>[A-Za-z][\w.-]*)\s*:?\s*$"
)

# Command accounting: the records Sigma's `product: cisco, service: aaa` rules search.
COMMAND_RECORDS: Final[tuple[str, ...]] = (
    "PARSER-5-CFGLOG_LOGGEDCMD",
    "ASA-5-111008",
    "ASA-7-111009",
    "ASA-5-111010",
)
LOGIN_FAILED_RECORDS: Final[tuple[str, ...]] = (
    "SEC_LOGIN-4-LOGIN_FAILED",
    "ASA-6-605004",
    "ASA-6-113015",
)

_Extract = Callable[[re.Match[str]], dict[str, str]]


def _groups(m: re.Match[str]) -> dict[str, str]:
    return {k: v.strip() for k, v in m.groupdict().items() if v is not None and v.strip()}


def _with(extra: dict[str, str]) -> _Extract:
    return lambda m: _groups(m) | extra


_IP_PORT = r"(?P<srcip>[\da-fA-F.:]+)"
_BY_NAME: Final[dict[str, tuple[re.Pattern[str], _Extract]]] = {
    "PARSER-5-CFGLOG_LOGGEDCMD": (
        re.compile(r"User:\s*(?P<user>\S+)\s+logged command:\s*(?P<command>.*)"),
        _groups,
    ),
    "111008": (
        re.compile(r"User '(?P<user>[^']*)' executed the '(?P<command>.*)' command\.?"),
        _groups,
    ),
    "111009": (re.compile(r"User '(?P<user>[^']*)' executed cmd: ?(?P<command>.*)"), _groups),
    "111010": (
        re.compile(
            r"User '(?P<user>[^']*)', running '(?P<ui>[^']*)' from IP "
            + _IP_PORT
            + r", executed '(?P<command>.*)'"
        ),
        _groups,
    ),
    "SEC_LOGIN-4-LOGIN_FAILED": (
        re.compile(
            r"Login failed \[user: ?(?P<user>[^\]]*)\] \[Source: ?"
            + _IP_PORT
            + r"\] \[localport: ?(?P<dstport>\d+)\](?: \[Reason: ?(?P<reason>[^\]]*)\])?.*"
        ),
        _with({"status": "failure"}),
    ),
    "SEC_LOGIN-5-LOGIN_SUCCESS": (
        re.compile(
            r"Login Success \[user: ?(?P<user>[^\]]*)\] \[Source: ?"
            + _IP_PORT
            + r"\] \[localport: ?(?P<dstport>\d+)\].*"
        ),
        _with({"status": "success"}),
    ),
    "605004": (
        re.compile(
            r"Login denied from (?P<srcip>[\da-fA-F.:]+)/(?P<srcport>\d+) to (?P<dstif>[^:]+):"
            r"(?P<dstip>[\da-fA-F.:]+)/(?P<service>\S+) for user \"(?P<user>[^\"]*)\""
        ),
        _with({"status": "failure"}),
    ),
    "605005": (
        re.compile(
            r"Login permitted from (?P<srcip>[\da-fA-F.:]+)/(?P<srcport>\d+) to (?P<dstif>[^:]+):"
            r"(?P<dstip>[\da-fA-F.:]+)/(?P<service>\S+) for user \"(?P<user>[^\"]*)\""
        ),
        _with({"status": "success"}),
    ),
    "113015": (
        re.compile(
            r"AAA user authentication Rejected : reason = (?P<reason>[^:]*?) : .*?"
            r"user = (?P<user>[^:]*?) : user IP = (?P<srcip>\S+)"
        ),
        _with({"status": "failure"}),
    ),
    "SEC-6-IPACCESSLOGP": (
        re.compile(
            r"list (?P<acl>\S+) (?P<action>permitted|denied) (?P<proto>\w+) "
            r"(?P<srcip>[\da-fA-F.:]+)\((?P<srcport>\d+)\)(?: \([^)]*\))? -> "
            r"(?P<dstip>[\da-fA-F.:]+)\((?P<dstport>\d+)\), (?P<packets>\d+) packets?"
        ),
        _groups,
    ),
    "106023": (
        re.compile(
            r"(?P<action>Deny) (?P<proto>\w+) src (?P<srcif>[^:]+):(?P<srcip>[\da-fA-F.:]+)"
            r"(?:/(?P<srcport>\d+))? dst (?P<dstif>[^:]+):(?P<dstip>[\da-fA-F.:]+)"
            r"(?:/(?P<dstport>\d+))? .*?by access-group \"(?P<acl>[^\"]*)\".*"
        ),
        _groups,
    ),
    "106100": (
        re.compile(
            r"access-list (?P<acl>\S+) (?P<action>permitted|denied|est-allowed) (?P<proto>\w+) "
            r"(?P<srcif>[^/]+)/(?P<srcip>[\da-fA-F.:]+)\((?P<srcport>\d+)\) -> "
            r"(?P<dstif>[^/]+)/(?P<dstip>[\da-fA-F.:]+)\((?P<dstport>\d+)\).*"
        ),
        _groups,
    ),
}


def parse(env: Envelope, header_host: str = "") -> DeviceRecord | None:
    """A Cisco record, None when the text holds no `%FAC-SEV-MNEMONIC:`."""
    m = _MNEMONIC.search(env.text)
    if m is None:
        return None
    facility, severity, mnemonic = m["facility"], m["severity"], m["mnemonic"]
    name = f"{facility}-{severity}-{mnemonic}"
    message = m["message"].strip()
    fields = {"facility": facility, "mnemonic": mnemonic}
    asa = facility in ("ASA", "FTD", "FWSM", "PIX")
    known = _BY_NAME.get(mnemonic if asa else name)
    if known is not None and (found := known[0].fullmatch(message)) is not None:
        fields |= known[1](found)
    hostname = header_host
    if not hostname and (before := _HOSTNAME.search(env.text[: m.start()])) is not None:
        hostname = before["host"]
    return DeviceRecord(
        format="cisco",
        vendor="cisco",
        product="asa" if asa else "ios",
        name=name,
        program=facility,
        message=message,
        hostname=hostname,
        facility=env.facility,
        severity=SEVERITIES[int(severity)],
        fields=fields,
    )
