"""Sigma rules for network devices (cisco, fortigate, huawei, juniper) on the devicelog source's
events, end to end: device message -> parser -> Event -> compiled Sigma rule.

The rules here are written for these tests in the shape of the public ones (keyword lists for
Cisco command accounting and BGP messages, FortiGate key=value selections)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError
from sigma.rule import SigmaLogSource, SigmaRule

from agent.sources.devicelog.parser import DeviceParser
from agent.sources.devicelog.source import _to_event
from canhgac.fields import event_fields
from collector.detection.compiler import compile_rule
from collector.detection.index import _WEAK_FIELDS, anchors
from collector.detection.logsources import devices
from collector.detection.pipeline import canhgac_pipeline, unmapped_reason
from tests.agent.sources.harness import CLOCK_NS, context

ASA_SHOW = b"<166>%ASA-5-111008: User 'enable_15' executed the 'show running-config' command."
IOS_CMD = (
    b"<189>Nov 21 08:15:02 core-sw1 812: Nov 21 08:15:02.114 ICT: "
    b"%PARSER-5-CFGLOG_LOGGEDCMD: User:netops  logged command:no logging host 10.20.0.5"
)
IOS_CONFIG = (
    b"<189>Nov 21 08:15:09 core-sw1 813: %SYS-5-CONFIG_I: Configured from console by netops "
    b"on vty0 (10.20.1.7): show running-config was not typed"
)
IOS_BADAUTH = (
    b"<187>31: core-r1: *Nov 21 03:00:00: %TCP-6-BADAUTH: Invalid MD5 digest from "
    b"10.0.0.2:179 to 10.0.0.1:51234"
)
FG_ADMIN_ADD = (
    b'<189>date=2026-11-21 time=09:12:44 devname="FGT1" logid="0100044547" type="event" '
    b'subtype="system" level="information" user="admin" ui="GUI(10.20.1.7)" action="Add" '
    b'cfgpath="system.admin" cfgobj="support2" msg="Add system.admin support2; '
    b'show running-config"'
)
FG_ADMIN_EDIT = FG_ADMIN_ADD.replace(b'action="Add"', b'action="Edit"')
FG_TRAFFIC_ADD = (
    b"date=2026-11-21 time=09:30:00 devname=FGT1 logid=0000000013 type=traffic "
    b"subtype=forward srcip=10.20.3.4 action=Add cfgpath=system.admin"
)
HW_BGP = (
    b"<188>Nov 21 2026 10:05:00 HW-PE-02 %%01BGP/4/BGP_AUTH_FAILED(l)[3]:BGP session "
    b"authentication failed. (Peer=10.0.0.9:179, VpnInstance=_public_)"
)
JUNOS_MD5 = (
    b"<28>Nov 21 10:10:00 mx-core /kernel: tcp_auth_ok: Packet from 10.0.0.7:179 missing MD5 digest"
)


def event(data: bytes, vendor: str = "auto") -> dict[str, Any]:
    record = DeviceParser(lambda: CLOCK_NS).parse(data, vendor)
    return dict(event_fields(_to_event(context(), record, data, "10.20.0.1")))


def rule(logsource: dict[str, str], detection: dict[str, Any]) -> SigmaRule:
    doc = {"title": "device test rule", "logsource": logsource, "detection": detection}
    parsed = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    assert isinstance(parsed, SigmaRule)
    canhgac_pipeline().apply(parsed)
    return parsed


def matches(r: SigmaRule, data: bytes, vendor: str = "auto") -> bool:
    return compile_rule(r).predicate(event(data, vendor))


def assert_indexed(r: SigmaRule) -> None:
    """The rule is indexed by a discriminating field: not evaluated on every event."""
    found = anchors(r.detection.parsed_condition[0].parsed)
    assert found, "no anchors: the rule would run on every event"
    assert not any(a.field in _WEAK_FIELDS for a in found)


CISCO_AAA = {"product": "cisco", "service": "aaa"}
COMMANDS = {
    "keywords": ["show running-config", "no logging", "write erase"],
    "condition": "keywords",
}


def test_cisco_command_accounting_keywords() -> None:
    r = rule(CISCO_AAA, COMMANDS)
    assert_indexed(r)
    assert matches(r, ASA_SHOW)
    assert matches(r, IOS_CMD)
    # The same words outside a command-accounting record, or on another vendor's record.
    assert not matches(r, IOS_CONFIG)
    assert not matches(r, FG_ADMIN_ADD)
    other = rule(CISCO_AAA, {"keywords": ["crypto pki export"], "condition": "keywords"})
    assert not matches(other, ASA_SHOW)


def test_cisco_command_keyword_looks_at_the_command_only() -> None:
    r = rule(CISCO_AAA, {"keywords": ["netops"], "condition": "keywords"})
    assert not matches(r, IOS_CMD)  # the user name is not the command


def test_cisco_bgp_keywords_all() -> None:
    r = rule(
        {"product": "cisco", "service": "bgp"},
        {"keywords": {"|all": [":179", "TCP-6-BADAUTH"]}, "condition": "keywords"},
    )
    assert_indexed(r)
    assert matches(r, IOS_BADAUTH)
    assert not matches(r, IOS_CMD)
    # Huawei's record says :179 too, but is not Cisco's.
    assert not matches(r, HW_BGP.replace(b"BGP_AUTH_FAILED", b"TCP-6-BADAUTH"))


def test_fortigate_event_fields() -> None:
    r = rule(
        {"product": "fortigate", "service": "event"},
        {"selection": {"action": "Add", "cfgpath": "system.admin"}, "condition": "selection"},
    )
    assert_indexed(r)
    assert matches(r, FG_ADMIN_ADD)
    assert not matches(r, FG_ADMIN_EDIT)
    assert not matches(r, FG_TRAFFIC_ADD)  # not an event log
    assert not matches(r, ASA_SHOW)


def test_a_cisco_rule_never_meets_a_fortigate_record() -> None:
    r = rule({"product": "cisco"}, {"keywords": ["show running-config"], "condition": "keywords"})
    assert matches(r, ASA_SHOW)
    assert not matches(r, FG_ADMIN_ADD)  # its msg says "show running-config" too


def test_huawei_bgp() -> None:
    r = rule(
        {"product": "huawei", "service": "bgp"},
        {"keywords": {"|all": [":179", "BGP_AUTH_FAILED"]}, "condition": "keywords"},
    )
    assert_indexed(r)
    assert matches(r, HW_BGP)
    assert not matches(r, HW_BGP.replace(b"BGP_AUTH_FAILED", b"BGP_PEER_DOWN"))


def test_juniper_bgp_needs_a_juniper_sender() -> None:
    r = rule(
        {"product": "juniper", "service": "bgp"},
        {"keywords": {"|all": [":179", "missing MD5 digest"]}, "condition": "keywords"},
    )
    assert_indexed(r)
    assert matches(r, JUNOS_MD5, vendor="juniper")
    # The BSD form has no Juniper mark: from a sender not configured as juniper it is generic.
    assert not matches(r, JUNOS_MD5)


def test_linux_rules_do_not_meet_device_records() -> None:
    r = rule({"product": "linux", "service": "auth"}, {"k": ["Login failed"], "condition": "k"})
    login = (
        b"<189>77: *Nov 21 01:02:03.456: %SEC_LOGIN-4-LOGIN_FAILED: Login failed "
        b"[user: cisco] [Source: 198.51.100.23] [localport: 22] at 01:02:03 ICT Sat Nov 21 2026"
    )
    assert event(login)["canhgac.log.fields.user"] == "cisco"
    assert not matches(r, login)


@pytest.mark.parametrize(
    "logsource",
    [
        {"product": "cisco", "service": "aaa"},
        {"product": "cisco", "service": "bgp"},
        {"product": "cisco", "service": "ldp"},
        {"product": "fortigate", "service": "event"},
        {"product": "huawei", "service": "bgp"},
        {"product": "juniper", "service": "bgp"},
    ],
)
def test_public_log_sources_are_mapped(logsource: dict[str, str]) -> None:
    source = SigmaLogSource(product=logsource["product"], service=logsource["service"])
    assert unmapped_reason(source) is None
    assert logsource["product"] in devices.PRODUCTS


def test_unmapped_device_service_is_refused() -> None:
    with pytest.raises(SigmaTransformationError, match="logsource not mapped"):
        rule({"product": "cisco", "service": "netflow"}, {"k": ["x"], "condition": "k"})
