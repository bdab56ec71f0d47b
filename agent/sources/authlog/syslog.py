"""The syslog envelope of an auth-log line: timestamp, host, program[pid], message.

Three line formats occur in files written by rsyslog and syslog-ng: the traditional one with
two timestamp styles, and RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`, rsyslog's
RSYSLOG_SyslogProtocol23Format; structured data is skipped, a nil host "-" falls back to the
agent's host name). The timestamp styles:
* RFC 3164, `Nov 22 12:27:47`, without year or zone: the zone is the injected one (default:
  the host's local zone) and the year is the latest one that does not put the line in the
  future, so a December line read in January belongs to last year.
* RFC 3339 / ISO 8601, `2026-11-22T12:27:47.123456+07:00` (rsyslog's high-precision template,
  the default on Debian 12 and later), with up to nanosecond precision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from agent.sources.base import pid_from_text, time_ns_in_range

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_RFC3164 = re.compile(
    r"(?P<stamp>(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)) (?P<host>\S+) (?P<rest>.*)",
    re.DOTALL,
)
_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)T(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<tz>Z|[+-]\d\d:?\d\d)? (?P<host>\S+) (?P<rest>.*)",
    re.DOTALL,
)
# RFC 5424 ("<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"), as rsyslog's
# RSYSLOG_SyslogProtocol23Format writes it to files; the PRI part may be left out. "-" is nil.
_RFC5424 = re.compile(
    r"(?:<\d{1,3}>)?1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<rest>.*)",
    re.DOTALL,
)
_TAG = re.compile(r"(?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)", re.DOTALL)
_REPEATED = re.compile(r"message repeated (?P<n>\d+) times?: \[ ?(?P<msg>.*)\]", re.DOTALL)
# Clock skew between the writer and the agent is tolerated up to this much "future".
_FUTURE_SLACK = timedelta(days=2)
_NS = 1_000_000_000


@dataclass(frozen=True)
class SyslogLine:
    time_ns: int
    host: str
    program: str
    pid: int
    message: str
    repeat_count: int = 0


class EnvelopeError(ValueError):
    """The line is not a syslog line this parser understands; `reason` is a counter label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# RFC 5424 facility and severity keywords, by number.
FACILITIES: Final = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)
SEVERITIES: Final = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_PRI: Final = re.compile(r"<(\d{1,3})>")


def split_pri(line: str) -> tuple[str, str, str] | None:
    """A line's leading PRI part (`<34>`) as (facility, severity, the rest of the line); None
    when the line starts with none. EnvelopeError("bad_pri") for a value past 191."""
    m = _PRI.match(line)
    if m is None:
        return None
    value = int(m[1])
    if value > 191:
        raise EnvelopeError("bad_pri")
    return FACILITIES[value >> 3], SEVERITIES[value & 7], line[m.end() :]


class SyslogEnvelopeParser:
    """Split a line into its envelope; `clock_ns` and `tz` (None: local zone) are injected."""

    def __init__(self, clock_ns: Callable[[], int], tz: tzinfo | None = None) -> None:
        self._clock_ns = clock_ns
        self._tz = tz
        # The clock's second and the RFC 3164 stamps converted in it (see _rfc3164_ns): a busy
        # log repeats the same second on many lines. Replaced, never cleared, when the second
        # changes, so that a conversion finishing late cannot land in the next second's memo.
        self._memo: tuple[int, dict[str, int | None]] = (-1, {})

    def parse(self, line: str) -> SyslogLine:
        return SyslogLine(*self.fields(line))

    def fields(self, line: str) -> EnvelopeFields:
        """What `parse` returns, as a plain tuple (cheaper to build, for the per-line path)."""
        if "A" <= line[:1] <= "Z":
            # Only the traditional format can start with a letter: RFC 5424 starts with "<" or
            # "1" and an ISO timestamp with a digit.
            m = _RFC3164.fullmatch(line)
            if m is None:
                raise EnvelopeError("not_syslog")
            time_ns = self._rfc3164_ns(m)
        elif m := _RFC5424.fullmatch(line):
            return self._rfc5424(m)
        elif m := _ISO.fullmatch(line):
            time_ns = self._iso_ns(m)
        else:
            raise EnvelopeError("not_syslog")
        tag = _TAG.fullmatch(m["rest"])
        if tag is None:
            raise EnvelopeError("not_syslog")
        message, repeat = tag["msg"], 0
        if message.startswith(_REPEATED_PREFIX) and (folded := _REPEATED.fullmatch(message)):
            message, repeat = folded["msg"], _repeats(folded["n"])
        return time_ns, m["host"], tag["prog"], pid_from_text(tag["pid"]), message.strip(), repeat

    def _rfc5424(self, m: re.Match[str]) -> EnvelopeFields:
        ts = _ISO.fullmatch(f"{m['ts']} - -")
        if ts is None:
            raise EnvelopeError("bad_timestamp")
        # RFC 5424 allows a BOM before a UTF-8 message.
        message = _skip_structured_data(m["rest"]).removeprefix("\ufeff")
        if m["app"] == "-":
            raise EnvelopeError("not_syslog")
        procid = m["procid"]
        repeat = 0
        if folded := _REPEATED.fullmatch(message):
            message, repeat = folded["msg"], _repeats(folded["n"])
        return (
            self._iso_ns(ts),
            "" if m["host"] == "-" else m["host"],
            m["app"],
            pid_from_text(procid),
            message.strip(),
            repeat,
        )

    def _iso_ns(self, m: re.Match[str]) -> int:
        tz = self._tz
        if zone := m["tz"]:
            if zone == "Z":
                tz = UTC
            else:
                sign = -1 if zone[0] == "-" else 1
                hours, minutes = int(zone[1:3]), int(zone[-2:])
                tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        try:
            y, mo, d, h, mi, s = (int(m[k]) for k in ("y", "mo", "d", "h", "m", "s"))
            dt = datetime(y, mo, d, h, mi, s, tzinfo=tz)
        except ValueError:
            raise EnvelopeError("bad_timestamp") from None
        frac = int((m["frac"] or "0").ljust(9, "0"))
        time_ns = _epoch_seconds(dt) * _NS + frac
        if not time_ns_in_range(time_ns):  # year 9999, or before 1970
            raise EnvelopeError("bad_timestamp")
        return time_ns

    def _rfc3164_ns(self, m: re.Match[str]) -> int:
        """The stamp's time, by `_rfc3164_uncached_ns`, remembered for the clock's second.

        That conversion depends on the clock only through the whole second `datetime.
        fromtimestamp` makes of it (a stamp has no fraction to compare with a fraction of
        now), so within one clock second the same stamp always converts the same way: the year
        rule and the zone's rules are applied exactly as without the memo. Clock readings that
        float rounding could carry into the next second are not memoised.
        """
        month = _MONTHS.get(m["mon"])
        if month is None:
            raise EnvelopeError("bad_timestamp")
        clock_ns = self._clock_ns()
        second, fraction = divmod(clock_ns, _NS)
        if fraction > _MEMO_MAX_FRACTION_NS or not 0 <= second < _MEMO_MAX_SECOND:
            time_ns = self._rfc3164_uncached_ns(m, month, clock_ns)
        else:
            memo_second, stamps = self._memo
            if second != memo_second or len(stamps) >= _MEMO_MAX_STAMPS:
                stamps = {}
                self._memo = (second, stamps)
            stamp = m["stamp"]
            if stamp in stamps:
                time_ns = stamps[stamp]
            else:
                time_ns = stamps[stamp] = self._rfc3164_uncached_ns(m, month, clock_ns)
        if time_ns is None:
            raise EnvelopeError("bad_timestamp")
        return time_ns

    def _rfc3164_uncached_ns(self, m: re.Match[str], month: int, clock_ns: int) -> int | None:
        now = datetime.fromtimestamp(clock_ns / _NS, self._tz)
        day, h, mi, s = int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"])
        # Latest year that is a valid date (29 February) and not in the future.
        for year in range(now.year, now.year - 8, -1):
            try:
                dt = datetime(year, month, day, h, mi, s, tzinfo=self._tz)
            except ValueError:
                continue
            if dt <= now + _FUTURE_SLACK:
                return _epoch_seconds(dt) * _NS
        return None


# (time_ns, host, program, pid, message, repeat_count), the fields of a SyslogLine.
EnvelopeFields = tuple[int, str, str, int, str, int]
_REPEATED_PREFIX = "message repeated "
# The memo of RFC 3164 stamps is used while `clock_ns / 1e9`, a float, is sure to keep the
# clock's whole second when fromtimestamp rounds it to microseconds: up to the year 2242 (a
# float then still resolves a microsecond) and not in the last 10 µs of a second.
_MEMO_MAX_SECOND = 2**33
_MEMO_MAX_FRACTION_NS = 999_990_000
_MEMO_MAX_STAMPS = 4096


def _repeats(text: str) -> int:
    """syslog's "message repeated N times" count, held to the wire's uint32."""
    return min(int(text), _UINT32_MAX)


_UINT32_MAX = 2**32 - 1


def _skip_structured_data(rest: str) -> str:
    """The message after RFC 5424 structured data: "-" or one or more [id param="v"] elements,
    where a value may hold an escaped \\] or \\"."""
    if rest.startswith("- ") or rest == "-":
        return rest[2:]
    i, n = 0, len(rest)
    if not rest.startswith("["):
        raise EnvelopeError("bad_structured_data")
    while i < n and rest[i] == "[":
        i += 1
        in_value = False
        while i < n:
            c = rest[i]
            if c == "\\" and in_value:
                i += 2
                continue
            if c == '"':
                in_value = not in_value
            elif c == "]" and not in_value:
                break
            i += 1
        if i >= n:
            raise EnvelopeError("bad_structured_data")
        i += 1
    message = rest[i:]
    return message[1:] if message.startswith(" ") else message


def _epoch_seconds(dt: datetime) -> int:
    # A naive datetime is local time; .timestamp() applies the local zone's rules (and DST)
    # for that date, which is what a syslog daemon writing local time did.
    return int(dt.timestamp())
