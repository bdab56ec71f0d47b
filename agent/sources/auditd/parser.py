"""Parse one line of the Linux audit log (auditd's audit.log) into a LogRecord event.

A line is one record:

    [node=<host> ]type=<TYPE> msg=audit(<sec>.<ms>:<serial>): key=value ...[\\x1dKEY=value ...]

* Values are unquoted, "double-quoted" or, for the inner message of user-space records,
  'single-quoted' (`msg='op=login acct="root" ... res=failed'`, whose own key=values are read
  as fields of the record; a key already set by the outer part keeps its outer value).
* A field that may hold untrusted text (a file name, a command line, an EXECVE argument ...) is
  written quoted when it is plain, otherwise hex-encoded without quotes
  (`name=2F746D702F612062`): those are decoded, as `ausearch -i` does; PROCTITLE's NUL
  separators become spaces. An EXECVE argument too long for one record comes in pieces
  (`a1_len=9000 a1[0]=... a1[1]=...`) which are joined into `a1`.
* `(null)` and `?` (auditd's "no value") leave the field out.
* With `log_format = ENRICHED` the record ends with a `\\x1d` (group separator) and auditd's
  interpretation of some fields under upper-case names (`ARCH=x86_64 SYSCALL=openat
  AUID="alice" UID="root"`): they become fields under those upper-case names.
* Words that are not key=value (AVC's `avc:  denied  { read } for`, the older shadow-utils
  `op=adding user`) continue the previous unquoted value, or, before any, go to field `text`.

The event: header category/type from RECORD_KINDS (ECS-minded, by record type),
`event.action` the record type in lower case, outcome from `success=yes|no` or
`res=success|failed|1|0`, time from `msg=audit(...)`, `Event.original` the line. LogRecord:
format "auditd", name = the record type, program = `comm` (for KERNEL_PROCESS_RECORDS only),
pid = `pid`, hostname = `node`,
fields = every key/value (decoded) plus `serial` (the audit event serial: the records of one
kernel event share time and serial).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.sources.base import Skipped
from canhgac.ids import new_id
from canhgac.v1 import events_pb2

SOURCE_ID: Final = "auditd"
FORMAT: Final = "auditd"

# ECS event.category / event.type per record type. A type not listed is ("host", "info").
RECORD_KINDS: Final[dict[str, tuple[str, str]]] = {
    "SYSCALL": ("process", "info"),
    "EXECVE": ("process", "start"),
    "PROCTITLE": ("process", "info"),
    "CWD": ("file", "info"),
    "PATH": ("file", "info"),
    "SOCKADDR": ("network", "info"),
    "USER_AUTH": ("authentication", "info"),
    "USER_ACCT": ("authentication", "info"),
    "USER_LOGIN": ("authentication", "start"),
    "USER_LOGOUT": ("authentication", "end"),
    "USER_ERR": ("authentication", "info"),
    "USER_CMD": ("process", "start"),
    "CRED_ACQ": ("session", "info"),
    "CRED_DISP": ("session", "info"),
    "CRED_REFR": ("session", "info"),
    "USER_START": ("session", "start"),
    "USER_END": ("session", "end"),
    "TTY": ("session", "info"),
    "USER_TTY": ("session", "info"),
    "ADD_USER": ("iam", "creation"),
    "DEL_USER": ("iam", "deletion"),
    "ADD_GROUP": ("iam", "creation"),
    "DEL_GROUP": ("iam", "deletion"),
    "USER_MGMT": ("iam", "change"),
    "GRP_MGMT": ("iam", "change"),
    "USER_CHAUTHTOK": ("iam", "change"),
    "GRP_CHAUTHTOK": ("iam", "change"),
    "ROLE_ASSIGN": ("iam", "change"),
    "ROLE_REMOVE": ("iam", "change"),
    "SERVICE_START": ("process", "start"),
    "SERVICE_STOP": ("process", "end"),
    "DAEMON_START": ("process", "start"),
    "DAEMON_END": ("process", "end"),
    "DAEMON_ABORT": ("process", "end"),
    "CONFIG_CHANGE": ("configuration", "change"),
    "DAEMON_CONFIG": ("configuration", "change"),
    "NETFILTER_CFG": ("configuration", "change"),
    "MAC_STATUS": ("configuration", "change"),
    "MAC_CONFIG_CHANGE": ("configuration", "change"),
    "MAC_POLICY_LOAD": ("configuration", "change"),
    "KERN_MODULE": ("driver", "info"),
    "AVC": ("intrusion_detection", "denied"),
    "ANOM_ABEND": ("process", "end"),
    "ANOM_PROMISCUOUS": ("network", "change"),
    "SYSTEM_BOOT": ("host", "start"),
    "SYSTEM_SHUTDOWN": ("host", "end"),
}
DEFAULT_KIND: Final = ("host", "info")
# Records whose `comm` names the process the record is about (LogRecord.program, so
# `process.name`); in user-space records (SERVICE_STOP ...) `comm` is the sender (systemd).
KERNEL_PROCESS_RECORDS: Final = frozenset(
    {"SYSCALL", "AVC", "SECCOMP", "ANOM_ABEND", "ANOM_LINK", "ANOM_PROMISCUOUS", "KERN_MODULE"}
)

# Fields auditd hex-encodes when their text is not plain (auparse's "escaped" fields), plus
# EXECVE's a0, a1 ... (matched by _ARGUMENT).
ENCODED_FIELDS: Final = frozenset(
    {
        "name",
        "proctitle",
        "cwd",
        "exe",
        "comm",
        "ocomm",
        "path",
        "cmd",
        "data",
        "key",
        "acct",
        "watch",
        "dir",
        "file",
        "root_dir",
        "vm",
        "new-disk",
        "old-disk",
        "new-chardev",
        "old-chardev",
        "grp",
    }
)
_ARGUMENT: Final = re.compile(r"a(\d+)(?:\[(\d+)\])?")
_HEADER: Final = re.compile(
    r"(?:node=(?P<node>\S*) )?type=(?P<type>[A-Za-z0-9_]+) "
    r"msg=audit\((?P<sec>\d+)(?:\.(?P<frac>\d{1,9}))?:(?P<serial>\d+)\):\s?"
)
_HEX: Final = re.compile(r"(?:[0-9A-F]{2})+")
_NO_VALUE: Final = frozenset({"(null)", "?", "(none)"})
ENRICHED_SEPARATOR: Final = "\x1d"
# Key within the inner msg='...' of a user-space record that would hide the outer one.
_KEY_CHARS: Final = re.compile(r"[A-Za-z0-9_\-\[\].]+")
_OUTCOME_SUCCESS: Final = frozenset({"yes", "success", "1"})
_OUTCOME_FAILURE: Final = frozenset({"no", "failed", "fail", "0"})


# Skipped reasons of this parser: `empty_line`, `not_audit_record` (no `type=...
# msg=audit(...):` header).


@dataclass
class Record:
    """One parsed audit record, before it becomes an Event."""

    type: str
    time_ns: int
    serial: str
    node: str
    fields: dict[str, str]
    # Counter labels of what was odd but still parsed (`unterminated_quote`).
    problems: list[str]


def _tokens(text: str, problems: list[str]) -> list[tuple[str | None, str, bool]]:
    """(key, value, quoted) triples; a bare word is (None, word, False)."""
    out: list[tuple[str | None, str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        eq = -1
        j = i
        while j < n and text[j] != " ":
            if text[j] == "=":
                eq = j
                break
            j += 1
        if eq <= i or not _KEY_CHARS.fullmatch(text[i:eq]):
            end = text.find(" ", i)
            end = n if end < 0 else end
            out.append((None, text[i:end], False))
            i = end
            continue
        key = text[i:eq]
        i = eq + 1
        if i < n and text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                problems.append("unterminated_quote")
                out.append((key, text[i + 1 :], True))
                break
            out.append((key, text[i + 1 : end], True))
            i = end + 1
        else:
            end = text.find(" ", i)
            end = n if end < 0 else end
            out.append((key, text[i:end], False))
            i = end
    return out


def _decode_hex(value: str, *, nul: str = " ") -> str:
    raw = bytes.fromhex(value)
    return raw.decode("utf-8", errors="replace").replace("\x00", nul).rstrip(nul)


def _is_encoded(key: str, record_type: str) -> bool:
    if key in ENCODED_FIELDS:
        return True
    return record_type == "EXECVE" and _ARGUMENT.fullmatch(key) is not None


def _value(key: str, value: str, quoted: bool, record_type: str) -> str | None:
    if quoted:
        return value
    if value in _NO_VALUE or value == "":
        return None
    if _is_encoded(key, record_type) and _HEX.fullmatch(value):
        if key == "key":
            # Several audit keys on one rule are hex of "k1\x01k2".
            return _decode_hex(value, nul=",").replace("\x01", ",")
        return _decode_hex(value)
    return value


def _collect(
    tokens: list[tuple[str | None, str, bool]],
    record_type: str,
    fields: dict[str, str],
    *,
    outer: bool,
    pieces: dict[str, dict[int, str]],
    problems: list[str],
) -> None:
    last: str | None = None  # the previous unquoted key, which bare words continue
    for key, raw, quoted in tokens:
        if key is None:
            target = last if last is not None and last in fields else "text"
            fields[target] = f"{fields[target]} {raw}" if target in fields else raw
            continue
        if key == "msg" and quoted and outer:
            inner = _tokens(raw, problems)
            if any(k is not None for k, _, _ in inner):
                _collect(inner, record_type, fields, outer=False, pieces=pieces, problems=problems)
            else:
                fields["msg"] = raw
            last = None
            continue
        last = None if quoted else key
        arg = _ARGUMENT.fullmatch(key) if record_type == "EXECVE" else None
        if arg is not None and arg.group(2) is not None:
            value = _value(f"a{arg.group(1)}", raw, quoted, record_type)
            pieces.setdefault(f"a{arg.group(1)}", {})[int(arg.group(2))] = value or ""
            last = None
            continue
        value = _value(key, raw, quoted, record_type)
        if value is None:
            last = None
            continue
        if not outer and key in fields:
            continue  # the outer record's own field wins
        fields[key] = value


def parse_record(line: str) -> Record | Skipped:
    """Split one audit.log line into its record type, time, serial and decoded fields."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return Skipped("empty_line")
    header = _HEADER.match(text)
    if header is None:
        return Skipped("not_audit_record")
    body = text[header.end() :]
    enriched = ""
    if ENRICHED_SEPARATOR in body:
        body, enriched = body.split(ENRICHED_SEPARATOR, 1)
    record_type = header["type"].upper()
    problems: list[str] = []
    fields: dict[str, str] = {}
    pieces: dict[str, dict[int, str]] = {}
    _collect(
        _tokens(body, problems),
        record_type,
        fields,
        outer=True,
        pieces=pieces,
        problems=problems,
    )
    for name, parts in pieces.items():
        fields[name] = "".join(parts[i] for i in sorted(parts))
    for key, value, quoted in _tokens(enriched.replace(ENRICHED_SEPARATOR, " "), problems):
        if key is not None and (quoted or value not in _NO_VALUE) and value:
            fields[key] = value
    frac = (header["frac"] or "").ljust(9, "0")
    time_ns = int(header["sec"]) * 1_000_000_000 + int(frac)
    if time_ns >= 2**63:  # past an int64 of nanoseconds (year 2262): a damaged line
        return Skipped("bad_timestamp")
    fields["serial"] = header["serial"]
    return Record(record_type, time_ns, header["serial"], header["node"] or "", fields, problems)


def _outcome(fields: dict[str, str]) -> events_pb2.Outcome.ValueType:
    verdict = fields.get("success", fields.get("res", "")).lower()
    if verdict in _OUTCOME_SUCCESS:
        return events_pb2.OUTCOME_SUCCESS
    if verdict in _OUTCOME_FAILURE:
        return events_pb2.OUTCOME_FAILURE
    return events_pb2.OUTCOME_UNSPECIFIED


class AuditdParser:
    """Turn audit.log lines into Events; `problems` counts odd-but-parsed lines by reason."""

    def __init__(self, *, agent_id: str, host: str, clock_ns: Callable[[], int]) -> None:
        self._agent_id = agent_id
        self._host = host
        self._clock_ns = clock_ns

    def parse(self, line: str, problems: list[str] | None = None) -> events_pb2.Event | Skipped:
        record = parse_record(line)
        if isinstance(record, Skipped):
            return record
        if problems is not None:
            problems.extend(record.problems)
        return self.event(record, line.rstrip("\r\n"))

    def event(self, record: Record, original: str) -> events_pb2.Event:
        category, kind = RECORD_KINDS.get(record.type, DEFAULT_KIND)
        created = self._clock_ns()
        pid = record.fields.get("pid", "")
        log = events_pb2.LogRecord(
            format=FORMAT,
            name=record.type,
            program=record.fields.get("comm", "") if record.type in KERNEL_PROCESS_RECORDS else "",
            pid=int(pid) if pid.isascii() and pid.isdigit() and int(pid) < 2**31 else 0,
            hostname=record.node,
            fields=record.fields,
        )
        return events_pb2.Event(
            id=new_id(created),
            time_ns=record.time_ns,
            created_ns=created,
            agent_id=self._agent_id,
            host=self._host,
            category=category,
            type=kind,
            action=record.type.lower(),
            outcome=_outcome(record.fields),
            source=SOURCE_ID,
            original=original,
            log=log,
        )
