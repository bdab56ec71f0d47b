"""Turn service log lines (syslog files, vsftpd.log, clamd.log) into LogRecord events.

A syslog line is split by the auth-log source's envelope parser (RFC 3164 with or without a
`<PRI>` prefix, RFC 3339 timestamps, RFC 5424); its program is checked against the allow-list
before anything else is done with it. The messages of a few programs are also split into
their own fields (`LogRecord.fields`, seen by rules as `canhgac.log.fields.<name>`):

* cron, crond, crontab, anacron: `(root) CMD (command)` -> user, action, command (or detail);
* vsftpd: `[user] FAIL LOGIN: Client "ip"` -> user, status, client, and file and bytes for
  transfers; the same message in vsftpd's own log, and xferlog transfer lines;
* clamd, clamonacc, clamav-milter: `/path: Signature FOUND` -> file, signature;
* guacd: `User "u" joined connection "c" (2 users now present)` -> user, connection,
  users_present.

Every line that yields no event is returned as `Skipped` with a bounded reason, for counting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, tzinfo
from typing import Final, Protocol

from agent.sources.authlog.syslog import EnvelopeError, SyslogEnvelopeParser, split_pri
from agent.sources.base import Skipped, SourceContext
from canhgac.v1 import events_pb2

SOURCE_ID: Final = "syslog"
CATEGORY: Final = "host"
TYPE: Final = "info"
ACTION: Final = "log_record"

# LogRecord.pid is an int32: a larger number in a tag is no process id (kept in the text).
_MAX_PID: Final = 2**31 - 1
# The tag of a line, found without reading its timestamp: the allow-list is checked on it
# first, so a line of another program costs one match. RFC 3164 / RFC 3339 headers, then
# RFC 5424's APP-NAME.
_QUICK_TAG = re.compile(
    r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ "
    r"(?P<tag>[^\s\[\]:]+)"
    r"|(?:<\d{1,3}>)?1 \S+ \S+ (?P<app>\S+) "
)
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# The ctime() timestamp vsftpd and ClamAV write in their own logs: `Mon Jan  1 10:00:00 2024`.
_CTIME = (
    r"(?P<wd>[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) (?P<y>\d{4})"
)
_VSFTPD_LINE = re.compile(_CTIME + r" \[pid (?P<pid>\d+)\] (?P<msg>.*)", re.DOTALL)
_XFERLOG_LINE = re.compile(
    _CTIME + r" (?P<secs>\d+) (?P<client>\S+) (?P<bytes>\d+) (?P<file>.+) (?P<type>[ab]) "
    r"(?P<special>\S+) (?P<direction>[oid]) (?P<mode>[agr]) (?P<user>\S+) (?P<service>\S+) "
    r"(?P<auth>\d) (?P<authuser>\S+) (?P<completion>[ci])",
    re.DOTALL,
)
_CLAMAV_LINE = re.compile(_CTIME + r" -> (?P<msg>.*)", re.DOTALL)
_CLAMAV_SEPARATOR = re.compile(r"-{3,}\s*")

_CRON = re.compile(r"\((?P<user>[^)]*)\) (?P<action>[A-Za-z][A-Za-z ]*?) \((?P<detail>.*)\)")
_VSFTPD = re.compile(
    r"(?:\[(?P<user>[^\]]*)\] )?(?P<status>[A-Z]+(?: [A-Z]+)*): Client \"(?P<client>[^\"]*)\""
    r"(?:, (?P<rest>.*))?",
    re.DOTALL,
)
_VSFTPD_FILE = re.compile(r"\"(?P<file>[^\"]*)\"(?:, (?P<bytes>\d+) bytes)?")
_CLAMAV_FOUND = re.compile(r"(?P<file>.+?): (?P<signature>\S+?)(?:\([^)]*\))? FOUND")
_GUACD_JOIN = re.compile(
    r"User \"(?P<user>[^\"]*)\" joined connection \"(?P<connection>[^\"]*)\" "
    r"\((?P<users>\d+) users? now present\)"
)
_MAPPED_V4 = "::ffff:"


# Skipped reasons of this parser: `empty_line`, `bad_pri`, the envelope's `not_syslog`,
# `bad_timestamp`, `bad_structured_data`, `program_not_selected`, `read_by_authlog`,
# `not_vsftpd`, `clamav_separator`.


class LineParser(Protocol):
    def parse(self, line: str) -> events_pb2.Event | Skipped: ...


def program_name(tag: str) -> str:
    """The program a syslog tag names: a path (`/usr/sbin/cron`) is reduced to its last part;
    a tag such as `postfix/smtpd` (program/subsystem) is kept."""
    return tag.rsplit("/", 1)[-1] if tag.startswith("/") else tag


def _client(address: str) -> str:
    # vsftpd listening on IPv6 writes IPv4 clients as IPv4-mapped addresses.
    return address.removeprefix(_MAPPED_V4) if "." in address else address


def _cron_fields(message: str) -> dict[str, str]:
    m = _CRON.fullmatch(message)
    if m is None:
        return {}
    action = m["action"]
    detail_key = "command" if action.upper() == "CMD" else "detail"
    return {"user": m["user"], "action": action, detail_key: m["detail"]}


def vsftpd_fields(message: str) -> dict[str, str]:
    """vsftpd's own words: `[bob] OK UPLOAD: Client "ip", "/path", 12 bytes, 3.4Kbyte/sec`."""
    m = _VSFTPD.fullmatch(message)
    if m is None:
        return {}
    fields = {"status": m["status"], "client": _client(m["client"])}
    if m["user"] is not None:
        fields["user"] = m["user"]
    if m["rest"] and (f := _VSFTPD_FILE.match(m["rest"])):
        fields["file"] = f["file"]
        if f["bytes"] is not None:
            fields["bytes"] = f["bytes"]
    return fields


def _clamav_fields(message: str) -> dict[str, str]:
    m = _CLAMAV_FOUND.fullmatch(message)
    return {} if m is None else {"file": m["file"], "signature": m["signature"]}


def _guacd_fields(message: str) -> dict[str, str]:
    m = _GUACD_JOIN.search(message)
    if m is None:
        return {}
    return {"user": m["user"], "connection": m["connection"], "users_present": m["users"]}


_CRON_PROGRAMS: Final = ("cron", "crond", "crontab", "anacron")
_CLAMAV_PROGRAMS: Final = ("clamd", "clamonacc", "clamav-milter", "clamscan", "clamdscan")
# Program (lower case) -> the splitter of its messages into fields.
MESSAGE_FIELDS: Final[Mapping[str, Callable[[str], dict[str, str]]]] = {
    **dict.fromkeys(_CRON_PROGRAMS, _cron_fields),
    "vsftpd": vsftpd_fields,
    **dict.fromkeys(_CLAMAV_PROGRAMS, _clamav_fields),
    "guacd": _guacd_fields,
}


def _record_event(
    ctx: SourceContext,
    line: str,
    time_ns: int,
    record: events_pb2.LogRecord,
) -> events_pb2.Event:
    return ctx.event(
        SOURCE_ID,
        category=CATEGORY,
        type=TYPE,
        action=ACTION,
        time_ns=time_ns,
        original=line,
        log=record,
    )


class SyslogLineParser:
    """RFC 3164 / RFC 5424 lines of the allowed programs -> events of format "syslog".

    `programs` holds the allowed programs in lower case (None: every program); `skip` those
    left to another source. `tz` is the zone of timestamps that carry none (None: local).
    """

    def __init__(
        self,
        ctx: SourceContext,
        *,
        programs: Collection[str] | None,
        skip: Collection[str] = (),
        tz: tzinfo | None = None,
    ) -> None:
        self._ctx = ctx
        self._programs = None if programs is None else frozenset(p.lower() for p in programs)
        self._skip = frozenset(p.lower() for p in skip)
        self._envelope = SyslogEnvelopeParser(ctx.clock_ns, tz)

    def parse(self, line: str) -> events_pb2.Event | Skipped:
        if not line.strip():
            return Skipped("empty_line")
        if (quick := _QUICK_TAG.match(line)) and (
            skipped := self._not_selected(quick["tag"] or quick["app"])
        ):
            return skipped
        facility = severity = ""
        rest = line
        if line.startswith("<"):
            try:
                pri = split_pri(line)
            except EnvelopeError:
                pri = None
            if pri is None:
                return Skipped("bad_pri")
            facility, severity, rest = pri
        try:
            env = self._envelope.parse(rest)
        except EnvelopeError as exc:
            return Skipped(exc.reason)
        program = program_name(env.program)
        key = program.lower()
        if skipped := self._not_selected(program):
            return skipped
        splitter = MESSAGE_FIELDS.get(key)
        record = events_pb2.LogRecord(
            format="syslog",
            program=program,
            pid=_pid(env.pid),
            message=env.message,
            hostname=env.host,
            facility=facility,
            severity=severity,
            fields=splitter(env.message) if splitter is not None else {},
        )
        if not _in_range(env.time_ns):
            return Skipped("bad_timestamp")
        return _record_event(self._ctx, line, env.time_ns, record)

    def _not_selected(self, tag: str) -> Skipped | None:
        key = program_name(tag).lower()
        if key in self._skip:
            return Skipped("read_by_authlog")
        if self._programs is not None and key not in self._programs:
            return Skipped("program_not_selected")
        return None


def _ctime_ns(m: re.Match[str], tz: tzinfo | None) -> int | None:
    month = _MONTHS.get(m["mon"])
    if month is None:
        return None
    try:
        dt = datetime(
            int(m["y"]), month, int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]), tzinfo=tz
        )
    except ValueError:
        return None
    time_ns = int(dt.timestamp()) * 1_000_000_000
    return time_ns if _in_range(time_ns) else None


class VsftpdLogParser:
    """vsftpd's own log (`vsftpd_log_file`): `TIME [pid N] [user] STATUS: Client "ip" ...`
    lines, and xferlog lines (`xferlog_std_format=YES`) as records of name "xferlog"."""

    def __init__(
        self, ctx: SourceContext, *, program: str = "vsftpd", tz: tzinfo | None = None
    ) -> None:
        self._ctx = ctx
        self._program = program
        self._tz = tz

    def parse(self, line: str) -> events_pb2.Event | Skipped:
        if not line.strip():
            return Skipped("empty_line")
        if m := _VSFTPD_LINE.fullmatch(line):
            time_ns = _ctime_ns(m, self._tz)
            if time_ns is None:
                return Skipped("bad_timestamp")
            message = m["msg"].strip()
            record = events_pb2.LogRecord(
                format="vsftpd",
                program=self._program,
                pid=_pid(int(m["pid"])),
                message=message,
                fields=vsftpd_fields(message),
            )
            return _record_event(self._ctx, line, time_ns, record)
        if m := _XFERLOG_LINE.fullmatch(line):
            time_ns = _ctime_ns(m, self._tz)
            if time_ns is None:
                return Skipped("bad_timestamp")
            fields = {
                "client": _client(m["client"]),
                "bytes": m["bytes"],
                "file": m["file"],
                "transfer_type": m["type"],
                "direction": m["direction"],
                "access_mode": m["mode"],
                "user": m["user"],
                "completion": m["completion"],
            }
            record = events_pb2.LogRecord(
                format="vsftpd",
                name="xferlog",
                program=self._program,
                message=line[m.end("y") + 1 :],
                fields=fields,
            )
            return _record_event(self._ctx, line, time_ns, record)
        return Skipped("not_vsftpd")


class ClamavLogParser:
    """ClamAV's own logs (clamd.log, freshclam.log): `TIME -> message` with `LogTime yes`,
    the bare message without it (stamped with the time it is read)."""

    def __init__(
        self, ctx: SourceContext, *, program: str = "clamd", tz: tzinfo | None = None
    ) -> None:
        self._ctx = ctx
        self._program = program
        self._tz = tz

    def parse(self, line: str) -> events_pb2.Event | Skipped:
        if not line.strip():
            return Skipped("empty_line")
        if m := _CLAMAV_LINE.fullmatch(line):
            stamped = _ctime_ns(m, self._tz)
            if stamped is None:
                return Skipped("bad_timestamp")
            time_ns, message = stamped, m["msg"].strip()
        else:
            time_ns, message = self._ctx.clock_ns(), line.strip()
        if _CLAMAV_SEPARATOR.fullmatch(message):
            return Skipped("clamav_separator")
        record = events_pb2.LogRecord(
            format="clamav",
            program=self._program,
            message=message,
            fields=_clamav_fields(message),
        )
        return _record_event(self._ctx, line, time_ns, record)


def _in_range(time_ns: int) -> bool:
    """Whether Event.time_ns (an int64 of nanoseconds since 1970) can hold `time_ns`."""
    return 0 <= time_ns < 2**63


def _pid(pid: int) -> int:
    """`pid` when LogRecord.pid can hold it, else 0 (no pid)."""
    return pid if 0 <= pid <= _MAX_PID else 0
