"""The device message parsers on hand-written messages of each vendor, and malformed ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.sources.devicelog.parser import DeviceParser
from agent.sources.devicelog.record import DeviceRecord, RefusalError
from tests.agent.sources.harness import CLOCK_NS


def parse(line: str | bytes, vendor: str = "auto") -> DeviceRecord:
    data = line.encode() if isinstance(line, str) else line
    return DeviceParser(lambda: CLOCK_NS).parse(data, vendor)


# --- Cisco ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "name", "product", "fields"),
    [
        (
            "<189>Nov 21 08:15:02 core-sw1 812: Nov 21 08:15:02.114 ICT: "
            "%PARSER-5-CFGLOG_LOGGEDCMD: User:netops  logged command:no logging host 10.20.0.5",
            "PARSER-5-CFGLOG_LOGGEDCMD",
            "ios",
            {"user": "netops", "command": "no logging host 10.20.0.5"},
        ),
        (
            "<189>77: *Nov 21 01:02:03.456: %SEC_LOGIN-4-LOGIN_FAILED: Login failed "
            "[user: cisco] [Source: 198.51.100.23] [localport: 22] [Reason: Login "
            "Authentication Failed] at 01:02:03 ICT Sat Nov 21 2026",
            "SEC_LOGIN-4-LOGIN_FAILED",
            "ios",
            {"user": "cisco", "srcip": "198.51.100.23", "dstport": "22", "status": "failure"},
        ),
        (
            "<189>78: *Nov 21 01:05:00.001: %SEC_LOGIN-5-LOGIN_SUCCESS: Login Success "
            "[user: netops] [Source: 10.20.1.7] [localport: 22] at 01:05:00 ICT Sat Nov 21 2026",
            "SEC_LOGIN-5-LOGIN_SUCCESS",
            "ios",
            {"user": "netops", "srcip": "10.20.1.7", "status": "success"},
        ),
        (
            "<190>91: edge-r2: Nov 21 02:00:00: %SEC-6-IPACCESSLOGP: list 120 denied tcp "
            "203.0.113.9(40112) -> 10.20.0.1(23), 1 packet",
            "SEC-6-IPACCESSLOGP",
            "ios",
            {
                "acl": "120",
                "action": "denied",
                "proto": "tcp",
                "srcip": "203.0.113.9",
                "srcport": "40112",
                "dstip": "10.20.0.1",
                "dstport": "23",
            },
        ),
        (
            "<166>Nov 21 2026 09:00:01 asa-hq : %ASA-5-111008: User 'enable_15' executed the "
            "'write erase' command.",
            "ASA-5-111008",
            "asa",
            {"user": "enable_15", "command": "write erase"},
        ),
        (
            "<167>%ASA-7-111009: User 'thanh' executed cmd: show running-config",
            "ASA-7-111009",
            "asa",
            {"user": "thanh", "command": "show running-config"},
        ),
        (
            "<165>%ASA-5-111010: User 'thanh', running 'CLI' from IP 10.20.1.8, executed "
            "'copy running-config tftp://10.99.0.4/x'",
            "ASA-5-111010",
            "asa",
            {
                "user": "thanh",
                "srcip": "10.20.1.8",
                "command": "copy running-config tftp://10.99.0.4/x",
            },
        ),
        (
            "<164>%ASA-4-106023: Deny udp src outside:198.51.100.7/5353 dst dmz:10.30.0.2/161 "
            'by access-group "OUT_IN" [0x8ed66b60, 0xf8852875]',
            "ASA-4-106023",
            "asa",
            {
                "action": "Deny",
                "proto": "udp",
                "srcip": "198.51.100.7",
                "dstport": "161",
                "acl": "OUT_IN",
            },
        ),
        (
            "<166>%ASA-6-605004: Login denied from 198.51.100.40/52111 to outside:203.0.113.1/ssh "
            'for user "admin"',
            "ASA-6-605004",
            "asa",
            {"srcip": "198.51.100.40", "user": "admin", "status": "failure"},
        ),
        (
            "<166>%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password "
            ": local database : user = root : user IP = 198.51.100.41",
            "ASA-6-113015",
            "asa",
            {"user": "root", "srcip": "198.51.100.41", "reason": "Invalid password"},
        ),
        (
            "<187>31: *Nov 21 03:00:00: %TCP-6-BADAUTH: Invalid MD5 digest from "
            "10.0.0.2(179) to 10.0.0.1(51234) tableid - 0",
            "TCP-6-BADAUTH",
            "ios",
            {"facility": "TCP", "mnemonic": "BADAUTH"},
        ),
    ],
)
def test_cisco_messages(line: str, name: str, product: str, fields: dict[str, str]) -> None:
    record = parse(line)
    assert (record.format, record.vendor, record.product, record.name) == (
        "cisco",
        "cisco",
        product,
        name,
    )
    assert fields.items() <= record.fields.items()
    assert (
        record.severity
        == ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"][
            int(name.split("-")[-2])
        ]
    )


def test_cisco_host_and_pri() -> None:
    record = parse(
        "<189>Nov 21 08:15:02 core-sw1 812: Nov 21 08:15:02.114 ICT: %SYS-5-CONFIG_I: "
        "Configured from console by netops on vty0 (10.20.1.7)"
    )
    assert (record.hostname, record.facility, record.program) == ("core-sw1", "local7", "SYS")
    assert record.message.startswith("Configured from console")
    assert parse("<166>Nov 21 2026 09:00:01 asa-hq : %ASA-6-302013: Built").hostname == "asa-hq"


def test_unknown_cisco_message_keeps_its_name_and_text() -> None:
    record = parse(
        "<189>%LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to down"
    )
    assert record.name == "LINEPROTO-5-UPDOWN"
    assert record.fields == {"facility": "LINEPROTO", "mnemonic": "UPDOWN"}


# --- FortiGate --------------------------------------------------------------------------------

FG_ADMIN = (
    '<189>date=2026-11-21 time=09:12:44 devname="FGT-SoTTTT" devid="FG200F0000000001" '
    'eventtime=1795750364123456789 tz="+0700" logid="0100044547" type="event" '
    'subtype="system" level="information" vd="root" logdesc="Object attribute configured" '
    'user="admin" ui="GUI(10.20.1.7)" action="Add" cfgtid=1966082 cfgpath="system.admin" '
    'cfgobj="support2" cfgattr="accprofile[super_admin]vdom[root]" msg="Add system.admin support2"'
)


def test_fortigate_event_log() -> None:
    record = parse(FG_ADMIN)
    assert (record.format, record.vendor, record.product) == ("fortigate", "fortinet", "fortigate")
    assert (record.name, record.hostname, record.severity) == ("event/system", "FGT-SoTTTT", "info")
    assert record.time_ns == 1795750364123456789
    assert record.message == "Add system.admin support2"
    assert record.fields["cfgpath"] == "system.admin"
    assert record.fields["cfgattr"] == "accprofile[super_admin]vdom[root]"
    assert record.fields["cfgtid"] == "1966082"


def test_fortigate_login_failure_with_escaped_quote_and_relay_header() -> None:
    record = parse(
        '<185>Nov 21 09:20:00 relay1 date=2026-11-21 time=09:20:00 devname="FGT1" '
        'logid="0100032002" type="event" subtype="system" level="alert" '
        'logdesc="Admin login failed" srcip=198.51.100.77 user="ad\\"min" action="login" '
        'status="failed" reason="name_invalid" msg="Administrator ad\\"min login failed"'
    )
    assert record.format == "fortigate"
    assert record.fields["user"] == 'ad"min'
    assert record.fields["srcip"] == "198.51.100.77"
    assert record.severity == "alert"


def test_fortigate_traffic_log() -> None:
    record = parse(
        "date=2026-11-21 time=09:30:00 devname=FGT1 logid=0000000013 type=traffic "
        "subtype=forward level=notice srcip=10.20.3.4 srcport=51000 dstip=203.0.113.80 "
        "dstport=443 proto=6 action=accept policyid=12 service=HTTPS"
    )
    assert (record.name, record.fields["action"], record.fields["dstport"]) == (
        "traffic/forward",
        "accept",
        "443",
    )


def test_fortigate_unterminated_quote_is_refused() -> None:
    with pytest.raises(RefusalError) as caught:
        parse('date=2026-11-21 time=09:30:00 devname="FGT1 logid="0100044547" type="event"')
    assert caught.value.reason == "malformed_fortigate"


# --- Huawei, Juniper --------------------------------------------------------------------------


def test_huawei_command_record() -> None:
    record = parse(
        "<187>Nov 21 2026 10:01:02 HW-CORE-01 %%01SHELL/5/CMDRECORD(s)[12]:Recorded command "
        "information. (Task=VT0, Ip=10.20.1.9, VpnName=, User=netops, AuthenticationMethod="
        '"Local-user", Command="undo info-center enable", Result=Success)'
    )
    assert (record.format, record.vendor, record.name) == ("huawei", "huawei", "SHELL/5/CMDRECORD")
    assert record.hostname == "HW-CORE-01"
    assert record.fields["Command"] == "undo info-center enable"
    assert record.fields["VpnName"] == ""
    assert record.severity == "notice"


def test_huawei_bgp_message_without_parameters() -> None:
    record = parse(
        "<188>Nov 21 2026 10:05:00 HW-PE-02 %%01BGP/4/BGP_AUTH_FAILED(l)[3]:BGP session "
        "authentication failed from 10.0.0.9:179"
    )
    assert (record.name, record.program) == ("BGP/4/BGP_AUTH_FAILED", "BGP")
    assert record.fields == {"module": "BGP", "brief": "BGP_AUTH_FAILED"}


def test_juniper_structured_data() -> None:
    record = parse(
        "<189>1 2026-11-21T10:00:00.123456789+07:00 mx-core mgd 4821 UI_CMDLINE_READ_LINE "
        '[junos@2636.1.1.1.2.39 username="netops" command="show system users"] '
        "User 'netops', command 'show system users '"
    )
    assert (record.format, record.vendor, record.name) == (
        "juniper",
        "juniper",
        "UI_CMDLINE_READ_LINE",
    )
    assert (record.hostname, record.program, record.pid) == ("mx-core", "mgd", 4821)
    assert record.fields == {"username": "netops", "command": "show system users"}
    expected = datetime(2026, 11, 21, 3, 0, 0, tzinfo=UTC).timestamp()
    assert record.time_ns == int(expected) * 1_000_000_000 + 123_456_000


def test_juniper_bsd_form_needs_the_configured_vendor() -> None:
    line = (
        "<28>Nov 21 10:10:00 mx-core /kernel: tcp_auth_ok: Packet from 10.0.0.7:179 "
        "missing MD5 digest"
    )
    assert parse(line).format == "syslog"
    record = parse(line, vendor="juniper")
    assert (record.format, record.vendor, record.program) == ("juniper", "juniper", "kernel")
    cmd = parse(
        "<189>Nov 21 10:11:00 mx-core mgd[4821]: UI_CMDLINE_READ_LINE: User 'netops', "
        "command 'request system zeroize '",
        vendor="juniper",
    )
    assert cmd.name == "UI_CMDLINE_READ_LINE"
    assert cmd.fields["command"] == "request system zeroize"


# --- generic and malformed ----------------------------------------------------------------------


def test_generic_fallback_keeps_the_configured_vendor() -> None:
    parser = DeviceParser(lambda: CLOCK_NS)
    record = parser.parse(b"<30>Nov 21 10:00:00 sw9 dhcpd[77]: DHCPACK on 10.20.5.5", "cisco")
    assert (record.format, record.vendor, record.program, record.pid) == (
        "syslog",
        "cisco",
        "dhcpd",
        77,
    )
    assert parser.fallbacks == {"cisco": 1}


def test_text_without_header_is_a_generic_message() -> None:
    record = parse("link up on port 7")
    assert (record.format, record.message, record.hostname) == ("syslog", "link up on port 7", "")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\r\n", "empty"),
        (b"\x00\x01\x02\xff\xfe binary", "not_text"),
        (b"<30>abc\x1b[31m", "not_text"),
        (b"<999>Nov 21 10:00:00 h p: x", "bad_pri"),
        (b"<14>1 2026-11-21T10:00:00Z h app - ID47 [broken message", "bad_structured_data"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RefusalError) as caught:
        parse(data)
    assert caught.value.reason == reason


def test_invalid_utf8_is_kept_visible() -> None:
    record = parse(b"<30>port descr caf\xe9 changed")
    assert "\ufffd" in record.message
