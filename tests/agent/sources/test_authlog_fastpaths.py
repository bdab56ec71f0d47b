"""The auth-log parser's shortcuts give what the plain computation gives.

* RFC 3164 stamps are converted once per clock second (`SyslogEnvelopeParser._rfc3164_ns`):
  checked against the plain conversion, as it was before the memo, across year boundaries,
  daylight-saving changes and clock readings at the edge of a second.
* sshd messages are tried only against the patterns their first character allows: checked
  against trying every pattern in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.authlog import sshd
from agent.sources.authlog.match import IGNORED, ProgramResult
from agent.sources.authlog.pam import parse_pam
from agent.sources.authlog.syslog import EnvelopeError, SyslogEnvelopeParser
from tests.agent.sources.test_authlog_parser import SHAPES

NS = 1_000_000_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ZONES: list[tzinfo] = [
    UTC,
    timezone(timedelta(hours=7)),
    timezone(-timedelta(hours=3, minutes=30)),
    ZoneInfo("America/New_York"),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("Australia/Lord_Howe"),  # a half-hour daylight-saving shift
]


def plain_rfc3164_ns(stamp: str, clock_ns: int, tz: tzinfo | None) -> int | str:
    """The conversion as written before the memo: latest year not more than 2 days ahead."""
    mon, day, hms = stamp.split()
    month = MONTHS.index(mon) + 1
    h, mi, s = (int(x) for x in hms.split(":"))
    now = datetime.fromtimestamp(clock_ns / NS, tz)
    for year in range(now.year, now.year - 8, -1):
        try:
            dt = datetime(year, month, int(day), h, mi, s, tzinfo=tz)
        except ValueError:
            continue
        if dt <= now + timedelta(days=2):
            return int(dt.timestamp()) * NS
    return "bad_timestamp"


# Instants around which the year and the zone's rules change: new year, the northern and
# southern daylight-saving changes, a leap day.
ANCHORS = [
    int(datetime(year, month, day, tzinfo=UTC).timestamp()) * NS
    for year in (2024, 2026, 2027)
    for month, day in ((1, 1), (3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1), (2, 29))
    if (year, month, day) != (2026, 2, 29) and (year, month, day) != (2027, 2, 29)
]
CLOCK_STEPS = st.one_of(
    st.integers(0, 3 * NS),
    st.sampled_from([1, NS - 1, NS, NS + 1, 999_990_000, 999_990_001, 999_999_500]),
)


@st.composite
def stamps(draw: st.DrawFn, clock_ns: int, tz: tzinfo) -> str:
    """A stamp right at the two days of tolerated future, near the clock, or anywhere."""
    kind = draw(st.sampled_from(["limit", "near", "anywhere"]))
    if kind == "anywhere":
        month, day = draw(st.integers(1, 12)), draw(st.integers(1, 31))
        h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
        return f"{MONTHS[month - 1]} {day:>2} {h:02}:{mi:02}:{s:02}"
    now = datetime.fromtimestamp(clock_ns // NS, tz)
    if kind == "limit":
        when = now + timedelta(days=2, seconds=draw(st.integers(-2, 2)))
    else:
        when = now + timedelta(seconds=draw(st.integers(-4 * 86400, 4 * 86400)))
    return when.strftime("%b %e %H:%M:%S")


def convert(parser: SyslogEnvelopeParser, stamp: str) -> int | str:
    """The line's time, or why it has none."""
    try:
        return parser.fields(f"{stamp} web1 su: + pts/0 alice:root")[0]
    except EnvelopeError as exc:
        return exc.reason


@settings(max_examples=300, deadline=None)
@given(data=st.data(), tz=st.sampled_from(ZONES), anchor=st.sampled_from(ANCHORS))
def test_memoised_stamps_equal_the_plain_conversion(
    data: st.DataObject, tz: tzinfo, anchor: int
) -> None:
    clock = [anchor + data.draw(st.integers(-3 * 86400 * NS, 3 * 86400 * NS))]
    parser = SyslogEnvelopeParser(lambda: clock[0], tz)
    seen: list[str] = []
    for _ in range(data.draw(st.integers(1, 30))):
        clock[0] += data.draw(CLOCK_STEPS)
        # Often a stamp already converted: the memo's hits are what is under test.
        reuse = data.draw(st.booleans())
        if seen and reuse:
            stamp = data.draw(st.sampled_from(seen))
        else:
            stamp = data.draw(stamps(clock[0], tz))
            seen.append(stamp)
        assert convert(parser, stamp) == plain_rfc3164_ns(stamp, clock[0], tz), (stamp, clock)


def test_a_clock_reading_that_rounds_into_the_next_second() -> None:
    second = int(datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp())
    # Exactly two days after the next second: in the future until the clock reaches it.
    stamp = (datetime.fromtimestamp(second + 1, UTC) + timedelta(days=2)).strftime("%b %e %H:%M:%S")
    now = second * NS + 5
    parser = SyslogEnvelopeParser(lambda: now, UTC)
    last_year = convert(parser, stamp)
    assert last_year == plain_rfc3164_ns(stamp, now, UTC)
    now = second * NS + NS - 1  # fromtimestamp rounds this float up to the next second
    this_year = convert(parser, stamp)
    assert this_year == plain_rfc3164_ns(stamp, now, UTC)
    assert this_year != last_year


@pytest.fixture
def local_zone_with_dst(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A POSIX TZ string needs no zoneinfo files: US Eastern with its daylight-saving rules.
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_with_dst")
@pytest.mark.parametrize(
    "stamp",
    [
        "Mar  8 01:59:59",  # just before the spring gap (2026-03-08 02:00 EST)
        "Mar  8 02:30:00",  # inside the gap: a wall time that never happened
        "Mar  8 03:00:00",
        "Nov  1 01:30:00",  # the autumn hour that happens twice
        "Nov  1 02:00:00",
        "Dec 31 23:59:59",
        "Jan  1 00:00:00",
        "Feb 29 12:00:00",
    ],
)
@pytest.mark.parametrize(
    "clock",
    [
        datetime(2026, 3, 8, 7, 0, 1, tzinfo=UTC),  # 03:00:01 EDT, just after the gap
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # the second 01:30 (EST)
        datetime(2027, 1, 1, 5, 0, 0, tzinfo=UTC),  # midnight of the new year, local
        datetime(2026, 12, 30, 4, 59, 59, tzinfo=UTC),  # two days before it
    ],
)
def test_memo_in_the_local_zone_across_dst_and_new_year(stamp: str, clock: datetime) -> None:
    base = int(clock.timestamp()) * NS
    parser = SyslogEnvelopeParser(lambda: now, None)
    # The same stamp at several readings of one second, then of the next.
    for now in (base, base + 1, base + 999_989_999, base + NS - 1, base + NS, base + NS + 7):
        assert convert(parser, stamp) == plain_rfc3164_ns(stamp, now, None)


# --- sshd dispatch ------------------------------------------------------------------------------


def every_pattern_in_order(message: str) -> ProgramResult:
    """parse_sshd as it was: every pattern tried, in order."""
    if message.startswith(("pam_", "PAM ")):
        return parse_pam(message)
    for _, pattern, build in sshd._BUILDERS:
        if m := pattern.fullmatch(message):
            return build(m)
    return IGNORED if message.startswith(sshd._NOISE) else None


WORDS = [
    "Accepted", "Failed", "Invalid", "invalid", "user", "for", "from", "port", "22", "ssh2",
    "1.2.3.4", "host.example", "password", "publickey", "[preauth]", "Connection", "closed",
    "reset", "by", "authenticating", "Disconnected", "Disconnecting", "User", "not", "allowed",
    "because", "error: maximum authentication attempts exceeded for", "Did", "receive",
    "identification string", "Received disconnect from", "root", "x:", ": RSA SHA256:abc", "",
]  # fmt: skip
# The sshd messages of the parser's table of real lines.
SSHD_MESSAGES = sorted(
    shape.line.split(": ", 1)[1] for shape in SHAPES if " sshd" in shape.line.split(": ", 1)[0]
)


@st.composite
def sshd_messages(draw: st.DrawFn) -> str:
    """A real message, its first word perhaps swapped or its case flipped, words around."""
    words = draw(st.sampled_from(SSHD_MESSAGES)).split(" ")
    if draw(st.booleans()):
        words[0] = draw(st.sampled_from(WORDS))
    if draw(st.booleans()):
        words[0] = words[0][:1].swapcase() + words[0][1:]
    before = draw(st.lists(st.sampled_from(WORDS), max_size=2))
    after = draw(st.lists(st.sampled_from(WORDS), max_size=2))
    return " ".join(before + words + after)


def test_the_table_has_a_message_for_every_pattern() -> None:
    for _, pattern, _ in sshd._BUILDERS:
        assert any(pattern.fullmatch(message) for message in SSHD_MESSAGES), pattern.pattern


@settings(max_examples=1000, deadline=None)
@given(st.one_of(sshd_messages(), st.lists(st.sampled_from(WORDS)).map(" ".join)))
def test_sshd_dispatch_equals_trying_every_pattern(message: str) -> None:
    assert sshd.parse_sshd(message) == every_pattern_in_order(message)
