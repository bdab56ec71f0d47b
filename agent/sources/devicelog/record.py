"""A device's syslog message taken apart: the PRI part, the syslog header when there is one, and
what a vendor parser read from the rest (`DeviceRecord`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from agent.sources.authlog.syslog import EnvelopeError, split_pri

# Control characters other than tab, line feed and carriage return: not a text message.
_BINARY: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RefusalError(ValueError):
    """The message yields no event; `reason` is the counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class DeviceRecord:
    """What one message says; empty strings are absent values (LogRecord's convention)."""

    format: str
    vendor: str = ""
    product: str = ""
    name: str = ""
    program: str = ""
    pid: int = 0
    message: str = ""
    hostname: str = ""
    facility: str = ""
    severity: str = ""
    time_ns: int = 0  # 0: the time it was received
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """The message's text and its PRI part (facility and severity names, "" when absent)."""

    text: str
    facility: str
    severity: str


def envelope(data: bytes) -> Envelope:
    """Decode `data` and split off the PRI part; RefusalError("empty" | "not_text" | "bad_pri")."""
    data = data.strip(b"\r\n\x00 ")
    if not data:
        raise RefusalError("empty")
    if _BINARY.search(data):
        raise RefusalError("not_text")
    # Devices mostly send UTF-8 (RFC 5424 may add a BOM); a legacy byte stays visible as U+FFFD.
    text = data.decode("utf-8", errors="replace").replace("\ufeff", "", 1)
    facility = severity = ""
    try:
        pri = split_pri(text)
    except EnvelopeError:
        raise RefusalError("bad_pri") from None
    if pri is not None:
        facility, severity, text = pri
        text = text.strip()
        if not text:
            raise RefusalError("empty")
    return Envelope(text.strip(), facility, severity)


_SD_ELEMENT: Final = re.compile(
    r'\[(?P<id>[^\s\]=]+)(?P<params>(?:\s+[^\s=\]]+="(?:[^"\\]|\\.)*")*)\s*\]'
)
_SD_PARAM: Final = re.compile(r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_RFC5424: Final = re.compile(
    r"1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<rest>.*)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Rfc5424:
    timestamp: str
    host: str
    app: str
    procid: str
    msgid: str
    sd_ids: tuple[str, ...]
    params: dict[str, str]
    message: str


def rfc5424(text: str) -> Rfc5424 | None:
    """`text` (after the PRI part) as an RFC 5424 message with its structured data, None when it
    is not one; RefusalError("bad_structured_data") when its structured data is broken."""
    m = _RFC5424.fullmatch(text)
    if m is None:
        return None
    rest, ids, params = m["rest"], [], {}
    if rest == "-" or rest.startswith("- "):
        rest = rest[2:]
    else:
        pos = 0
        while pos < len(rest) and rest[pos] == "[":
            element = _SD_ELEMENT.match(rest, pos)
            if element is None:
                raise RefusalError("bad_structured_data")
            ids.append(element["id"])
            for key, value in _SD_PARAM.findall(element["params"]):
                params[key] = re.sub(r"\\([\\\]\"])", r"\1", value)
            pos = element.end()
        if pos == 0:
            raise RefusalError("bad_structured_data")
        rest = rest[pos:].removeprefix(" ")

    def nil(value: str) -> str:
        return "" if value == "-" else value

    return Rfc5424(
        nil(m["ts"]),
        nil(m["host"]),
        nil(m["app"]),
        nil(m["procid"]),
        nil(m["msgid"]),
        tuple(ids),
        params,
        rest.removeprefix("\ufeff").strip(),
    )


# "(Key=Value, Key2="quoted, value", ...)" at the end of a Huawei message.
_PAREN_START: Final = re.compile(r"\((\s*[A-Za-z][\w.-]*=)")
_PAREN_PARAM: Final = re.compile(r'\s*([A-Za-z][\w.-]*)=("(?:[^"\\]|\\.)*"|[^,)]*)\s*(?:,|$)')


def paren_params(text: str) -> dict[str, str]:
    """Key=value pairs of a trailing "(K=V, K2=V2)" list; {} when there is none."""
    start = _PAREN_START.search(text)
    if start is None or not text.endswith(")"):
        return {}
    inner = text[start.end() - len(start[1]) : -1]
    out: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _PAREN_PARAM.match(inner, pos)
        if m is None or m.end() == pos:
            return out
        value = m[2].strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[m[1]] = value
        pos = m.end()
    return out
