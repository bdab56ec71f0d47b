"""Service log lines (hand-written, in the shapes the daemons write) -> LogRecord events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.sources.base import Skipped
from agent.sources.syslog.config import DEFAULT_PROGRAMS
from agent.sources.syslog.parser import (
    ClamavLogParser,
    SyslogLineParser,
    VsftpdLogParser,
    program_name,
)
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CLOCK_NS, context

AUTHLOG = ("sshd", "sudo", "su", "useradd")


def syslog_parser(programs: tuple[str, ...] | None = DEFAULT_PROGRAMS) -> SyslogLineParser:
    return SyslogLineParser(context(), programs=programs, skip=AUTHLOG, tz=UTC)


def parse(line: str) -> events_pb2.Event:
    event = syslog_parser().parse(line)
    assert isinstance(event, events_pb2.Event), event
    return event


def ns(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("line", "program", "pid", "message", "fields"),
    [
        # Debian cron running a job (RFC 3164, no PRI)
        (
            "Nov 22 12:17:01 web1 CRON[20811]: (root) CMD (   cd / && run-parts --report "
            "/etc/cron.hourly)",
            "CRON",
            20811,
            "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
            {
                "user": "root",
                "action": "CMD",
                "command": "   cd / && run-parts --report /etc/cron.hourly",
            },
        ),
        # RHEL crond in /var/log/cron
        (
            "Nov 22 03:01:01 db2 CROND[4412]: (oracle) CMD (/home/oracle/bin/rman_backup.sh)",
            "CROND",
            4412,
            "(oracle) CMD (/home/oracle/bin/rman_backup.sh)",
            {"user": "oracle", "action": "CMD", "command": "/home/oracle/bin/rman_backup.sh"},
        ),
        # crontab -e by a user
        (
            "Nov 22 09:40:12 web1 crontab[30112]: (www-data) REPLACE (www-data)",
            "crontab",
            30112,
            "(www-data) REPLACE (www-data)",
            {"user": "www-data", "action": "REPLACE", "detail": "www-data"},
        ),
        (
            "Nov 22 09:39:58 web1 crontab[30110]: (tuannm) BEGIN EDIT (tuannm)",
            "crontab",
            30110,
            "(tuannm) BEGIN EDIT (tuannm)",
            {"user": "tuannm", "action": "BEGIN EDIT", "detail": "tuannm"},
        ),
        # cron's PAM session line: no fields of its own
        (
            "Nov 22 12:17:01 web1 CRON[20810]: pam_unix(cron:session): session opened for user "
            "root(uid=0) by (uid=0)",
            "CRON",
            20810,
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            {},
        ),
        # vsftpd logging to syslog (syslog_enable=YES), IPv4-mapped client address
        (
            'Nov 22 10:02:33 ftp1 vsftpd[1822]: [ketoan] FAIL LOGIN: Client "::ffff:198.51.100.23"',
            "vsftpd",
            1822,
            '[ketoan] FAIL LOGIN: Client "::ffff:198.51.100.23"',
            {"user": "ketoan", "status": "FAIL LOGIN", "client": "198.51.100.23"},
        ),
        (
            'Nov 22 10:03:10 ftp1 vsftpd[1830]: [ketoan] OK UPLOAD: Client "198.51.100.23", '
            '"/srv/ftp/ketoan/bao-cao-q3.xlsx", 48211 bytes, 322.10Kbyte/sec',
            "vsftpd",
            1830,
            '[ketoan] OK UPLOAD: Client "198.51.100.23", "/srv/ftp/ketoan/bao-cao-q3.xlsx", '
            "48211 bytes, 322.10Kbyte/sec",
            {
                "user": "ketoan",
                "status": "OK UPLOAD",
                "client": "198.51.100.23",
                "file": "/srv/ftp/ketoan/bao-cao-q3.xlsx",
                "bytes": "48211",
            },
        ),
        (
            'Nov 22 10:01:59 ftp1 vsftpd[1821]: CONNECT: Client "2001:db8::17"',
            "vsftpd",
            1821,
            'CONNECT: Client "2001:db8::17"',
            {"status": "CONNECT", "client": "2001:db8::17"},
        ),
        # clamd detection and freshclam update
        (
            "Nov 22 11:20:45 mail1 clamd[977]: /var/www/html/uploads/shell.php: "
            "Php.Webshell.Generic-1 FOUND",
            "clamd",
            977,
            "/var/www/html/uploads/shell.php: Php.Webshell.Generic-1 FOUND",
            {"file": "/var/www/html/uploads/shell.php", "signature": "Php.Webshell.Generic-1"},
        ),
        (
            "Nov 22 11:00:02 mail1 freshclam[880]: daily.cld updated (version: 27102, sigs: "
            "2071234, f-level: 90, builder: raynman)",
            "freshclam",
            880,
            "daily.cld updated (version: 27102, sigs: 2071234, f-level: 90, builder: raynman)",
            {},
        ),
        # guacd: a second user joins a shared remote-desktop connection
        (
            'Nov 22 14:05:07 gw1 guacd[6120]: User "@3f2a9c1e-77b0-4c2e-9a51-0d4b6e7f8a12" joined '
            'connection "$8c1d2e3f-0a4b-4c5d-8e6f-7a8b9c0d1e2f" (2 users now present)',
            "guacd",
            6120,
            'User "@3f2a9c1e-77b0-4c2e-9a51-0d4b6e7f8a12" joined connection '
            '"$8c1d2e3f-0a4b-4c5d-8e6f-7a8b9c0d1e2f" (2 users now present)',
            {
                "user": "@3f2a9c1e-77b0-4c2e-9a51-0d4b6e7f8a12",
                "connection": "$8c1d2e3f-0a4b-4c5d-8e6f-7a8b9c0d1e2f",
                "users_present": "2",
            },
        ),
        # named refusing a zone transfer
        (
            "Nov 22 08:15:40 ns1 named[702]: client @0x7f3a2c01b168 203.0.113.9#51234 "
            "(tinh.gov.vn): zone transfer 'tinh.gov.vn/AXFR/IN' denied",
            "named",
            702,
            "client @0x7f3a2c01b168 203.0.113.9#51234 (tinh.gov.vn): zone transfer "
            "'tinh.gov.vn/AXFR/IN' denied",
            {},
        ),
        # systemd stopping the firewall (RFC 3339 timestamp, rsyslog's Debian 12 default)
        (
            "2026-11-22T12:27:47.123456+07:00 web1 systemd[1]: Stopping firewalld.service - "
            "firewalld - dynamic firewall daemon...",
            "systemd",
            1,
            "Stopping firewalld.service - firewalld - dynamic firewall daemon...",
            {},
        ),
        # a program named by its path: the name is its last part
        (
            "Nov 22 12:17:01 old1 /usr/sbin/cron[999]: (root) CMD (/usr/local/bin/sync.sh)",
            "cron",
            999,
            "(root) CMD (/usr/local/bin/sync.sh)",
            {"user": "root", "action": "CMD", "command": "/usr/local/bin/sync.sh"},
        ),
    ],
)
def test_syslog_line_shapes(
    line: str, program: str, pid: int, message: str, fields: dict[str, str]
) -> None:
    event = parse(line)
    assert (event.category, event.type, event.action) == ("host", "info", "log_record")
    assert event.source == "syslog"
    assert event.original == line
    assert event.host == "web1"  # the agent's host; the line's own host is the record's
    assert event.WhichOneof("payload") == "log"
    log = event.log
    assert (log.format, log.program, log.pid, log.message) == ("syslog", program, pid, message)
    assert dict(log.fields) == fields
    assert (log.facility, log.severity) == ("", "")  # no PRI on these lines


def test_timestamps_and_hostname() -> None:
    event = parse("Nov 22 12:17:01 web7 CRON[1]: (root) CMD (true)")
    assert event.time_ns == ns(2026, 11, 22, 12, 17, 1)
    assert event.created_ns == CLOCK_NS
    assert event.log.hostname == "web7"
    iso = parse("2026-11-22T12:27:47.5+07:00 web1 systemd[1]: Stopping iptables.service...")
    assert iso.time_ns == ns(2026, 11, 22, 5, 27, 47) + 500_000_000


def test_pri_gives_facility_and_severity() -> None:
    # <78> = cron (9) * 8 + info (6); RFC 3164 with PRI, as a forwarding template writes it.
    event = parse("<78>Nov 22 12:17:01 web1 CRON[20811]: (root) CMD (date)")
    assert (event.log.facility, event.log.severity) == ("cron", "info")
    assert event.original.startswith("<78>")
    assert event.log.fields["command"] == "date"


def test_rfc5424_with_and_without_pri() -> None:
    with_pri = parse(
        "<91>1 2026-11-22T10:02:33.412+07:00 ftp1 vsftpd 1822 - - [an] FAIL LOGIN: "
        'Client "203.0.113.50"'
    )
    # <91> = ftp (11) * 8 + err (3)
    assert (with_pri.log.facility, with_pri.log.severity) == ("ftp", "err")
    assert (with_pri.log.program, with_pri.log.pid) == ("vsftpd", 1822)
    assert with_pri.log.fields["client"] == "203.0.113.50"
    bare = parse(
        '1 2026-11-22T14:05:07Z gw1 guacd 6120 - [meta sequenceId="7"] User "a" joined '
        'connection "$c" (2 users now present)'
    )
    assert bare.log.fields["users_present"] == "2"
    assert bare.time_ns == ns(2026, 11, 22, 14, 5, 7)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty_line"),
        ("   ", "empty_line"),
        ("<999>Nov 22 12:17:01 web1 CRON[1]: x", "bad_pri"),
        ("<13 Nov 22 12:17:01 web1 CRON[1]: x", "bad_pri"),
        ("this is not a syslog line", "not_syslog"),
        ("Foo 22 12:17:01 web1 CRON[1]: (root) CMD (x)", "bad_timestamp"),
        ("2026-13-45T10:00:00Z web1 CRON[1]: (root) CMD (x)", "bad_timestamp"),
        ("Nov 22 12:17:01 web1 kernel: [ 12.345] usb 1-1: new device", "program_not_selected"),
        ("Nov 22 12:17:01 web1 postfix/smtpd[77]: connect from x", "program_not_selected"),
        ("<22>1 2026-11-22T10:00:00Z mx1 postfix 77 - - connect from x", "program_not_selected"),
        # the allow-list is checked before the timestamp is read
        ("Nov 31 12:17:01 web1 kernel: x", "program_not_selected"),
        ("Nov 31 12:17:01 web1 CRON[1]: (root) CMD (x)", "bad_timestamp"),
        (
            "Nov 22 12:17:01 web1 sshd[5]: Failed password for root from 203.0.113.1 port 5 ssh2",
            "read_by_authlog",
        ),
    ],
)
def test_lines_without_an_event_say_why(line: str, reason: str) -> None:
    assert syslog_parser().parse(line) == Skipped(reason)


def test_allow_list_ignores_case_and_star_keeps_every_program() -> None:
    only_cron = syslog_parser(("CRON",))
    assert only_cron.parse("Nov 22 01:00:00 h anacron[1]: x") == Skipped("program_not_selected")
    event = syslog_parser(("CRON",)).parse("Nov 22 01:00:00 h cron[1]: x")
    assert isinstance(event, events_pb2.Event)
    every = syslog_parser(None).parse("Nov 22 01:00:00 h postfix/smtpd[77]: connect from x")
    assert isinstance(every, events_pb2.Event)
    assert every.log.program == "postfix/smtpd"
    # authlog's programs stay skipped even with every program allowed
    assert syslog_parser(None).parse("Nov 22 01:00:00 h sudo[7]: x") == Skipped("read_by_authlog")


def test_program_names() -> None:
    assert program_name("/usr/sbin/cron") == "cron"
    assert program_name("postfix/smtpd") == "postfix/smtpd"
    assert program_name("clamav-milter") == "clamav-milter"
    assert program_name("python3.11") == "python3.11"


# --- services' own log files ----------------------------------------------------------------


def vsftpd(line: str) -> events_pb2.Event | Skipped:
    return VsftpdLogParser(context(), tz=UTC).parse(line)


def test_vsftpd_own_log() -> None:
    event = vsftpd(
        'Sun Nov 22 10:02:33 2026 [pid 1822] [kho-luu] FAIL LOGIN: Client "::ffff:198.51.100.23"'
    )
    assert isinstance(event, events_pb2.Event)
    log = event.log
    assert (log.format, log.name, log.program, log.pid) == ("vsftpd", "", "vsftpd", 1822)
    assert log.message == '[kho-luu] FAIL LOGIN: Client "::ffff:198.51.100.23"'
    assert dict(log.fields) == {
        "user": "kho-luu",
        "status": "FAIL LOGIN",
        "client": "198.51.100.23",
    }
    assert event.time_ns == ns(2026, 11, 22, 10, 2, 33)
    connect = vsftpd('Sun Nov  1 09:00:00 2026 [pid 3] CONNECT: Client "203.0.113.4"')
    assert isinstance(connect, events_pb2.Event)
    assert connect.time_ns == ns(2026, 11, 1, 9, 0, 0)
    assert dict(connect.log.fields) == {"status": "CONNECT", "client": "203.0.113.4"}


def test_vsftpd_xferlog_line() -> None:
    line = (
        "Sun Nov 22 10:05:12 2026 1 198.51.100.23 48211 /srv/ftp/bao cao.xlsx b _ i r kt ftp 0 * c"
    )
    event = vsftpd(line)
    assert isinstance(event, events_pb2.Event)
    assert (event.log.format, event.log.name) == ("vsftpd", "xferlog")
    assert dict(event.log.fields) == {
        "client": "198.51.100.23",
        "bytes": "48211",
        "file": "/srv/ftp/bao cao.xlsx",
        "transfer_type": "b",
        "direction": "i",
        "access_mode": "r",
        "user": "kt",
        "completion": "c",
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage", "not_vsftpd"),
        ('Nov 22 10:02:33 ftp1 vsftpd[1]: CONNECT: Client "1.2.3.4"', "not_vsftpd"),
        ('Sun Foo 22 10:02:33 2026 [pid 1] CONNECT: Client "1.2.3.4"', "bad_timestamp"),
        ('Sun Feb 30 10:02:33 2026 [pid 1] CONNECT: Client "1.2.3.4"', "bad_timestamp"),
        ("", "empty_line"),
    ],
)
def test_vsftpd_malformed(line: str, reason: str) -> None:
    assert vsftpd(line) == Skipped(reason)


def clamav(line: str, program: str = "clamd") -> events_pb2.Event | Skipped:
    return ClamavLogParser(context(), program=program, tz=UTC).parse(line)


def test_clamav_own_log() -> None:
    event = clamav(
        "Sun Nov 22 11:20:45 2026 -> /tmp/.x/kworkerds: Unix.Trojan.Mirai-7100807-0 FOUND"
    )
    assert isinstance(event, events_pb2.Event)
    assert (event.log.format, event.log.program) == ("clamav", "clamd")
    assert dict(event.log.fields) == {
        "file": "/tmp/.x/kworkerds",
        "signature": "Unix.Trojan.Mirai-7100807-0",
    }
    assert event.time_ns == ns(2026, 11, 22, 11, 20, 45)
    # ExtendedDetectionInfo adds the hash and size after the signature name
    detailed = clamav(
        "Sun Nov 22 11:21:00 2026 -> /srv/a b.php: Php.Webshell.Generic-1(0cc175b9:12) FOUND"
    )
    assert isinstance(detailed, events_pb2.Event)
    assert detailed.log.fields["file"] == "/srv/a b.php"
    assert detailed.log.fields["signature"] == "Php.Webshell.Generic-1"
    # LogTime no: the bare message, stamped when read
    bare = clamav("SelfCheck: Database status OK.", program="clamd")
    assert isinstance(bare, events_pb2.Event)
    assert (bare.time_ns, bare.log.message, dict(bare.log.fields)) == (
        CLOCK_NS,
        "SelfCheck: Database status OK.",
        {},
    )
    update = clamav("Sun Nov 22 11:00:02 2026 -> daily.cld updated (version: 27102)", "freshclam")
    assert isinstance(update, events_pb2.Event)
    assert update.log.program == "freshclam"


def test_clamav_separators_and_bad_dates_are_counted() -> None:
    assert clamav("--------------------------------------") == Skipped("clamav_separator")
    assert clamav("Sun Nov 22 11:00:02 2026 -> --------------------------------------") == Skipped(
        "clamav_separator"
    )
    assert clamav("Sun Nov 31 11:00:02 2026 -> x") == Skipped("bad_timestamp")
    assert clamav("") == Skipped("empty_line")


def test_a_pid_outside_int32_is_no_pid_rather_than_a_crash() -> None:
    # Any local user can write such a tag (`logger -t 'x[99999999999]'`): the line must not
    # stop the source, whose checkpoint would then stay before it for ever.
    for line in (
        "Nov 22 10:00:00 web1 cron[99999999999]: hello",
        "<30>1 2026-11-22T10:00:00Z web1 cron 99999999999 - - hello",
    ):
        assert parse(line).log.pid == 0
    event = vsftpd('Sun Nov 22 10:02:33 2026 [pid 99999999999] CONNECT: Client "203.0.113.4"')
    assert isinstance(event, events_pb2.Event)
    assert event.log.pid == 0


@pytest.mark.parametrize(
    "line",
    [
        "<30>1 9999-11-22T10:00:00Z web1 cron 1 - - hello",  # past int64 nanoseconds
        "<30>1 0001-01-01T00:00:00Z web1 cron 1 - - hello",  # before 1970
    ],
)
def test_a_syslog_time_outside_int64_nanoseconds_is_a_bad_timestamp(line: str) -> None:
    assert syslog_parser(None).parse(line) == Skipped("bad_timestamp")


@pytest.mark.parametrize("year", ["9999", "0001"])
def test_a_ctime_outside_int64_nanoseconds_is_a_bad_timestamp(year: str) -> None:
    vsftpd_line = f'Sun Nov 22 10:02:33 {year} [pid 1] CONNECT: Client "1.2.3.4"'
    clamav_line = f"Sun Nov 22 10:02:33 {year} -> /tmp/x: Eicar-Signature FOUND"
    assert vsftpd(vsftpd_line) == Skipped("bad_timestamp")
    assert ClamavLogParser(context(), tz=UTC).parse(clamav_line) == Skipped("bad_timestamp")
