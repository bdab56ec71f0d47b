"""Sigma rules for Zeek's logs, end to end: Zeek line -> agent parser -> Event -> rules.

The rules here are written for these tests, shaped like the public `product: zeek` rules
(their services, field names and modifiers), and compiled through canhgac_pipeline() by the
real engine.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection

from agent.sources.zeek.parser import EVENT_KINDS, ZeekLogParser
from canhgac.fields import LOG_FIELD_PREFIX, event_fields, is_known_field
from canhgac.v1 import events_pb2
from collector.detection.engine import DetectionEngine
from collector.detection.index import RuleIndex, anchors
from collector.detection.logsources import zeek
from collector.detection.pipeline import canhgac_pipeline
from tests.agent.sources.zeek import samples as s

T0 = 1_795_350_000_000_000_000

RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "webdav_put_external": (
        "http",
        {
            "selection": {"user_agent|contains": "WebDAV", "method": "PUT"},
            "filter": {"id.resp_h|cidr": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]},
            "condition": "selection and not filter",
        },
    ),
    "webdav_exe_w3c_names": (
        "http",
        {
            "webdav": [{"c-useragent|contains": "WebDAV"}, {"c-uri|contains": "webdav"}],
            "exe": [{"resp_mime_types|contains": "dosexec"}, {"c-uri|endswith": ".exe"}],
            "condition": "webdav and exe",
        },
    ),
    "http_not_get": ("http", {"sel": {"method": "GET"}, "condition": "not sel"}),
    "smb_pipe_stdout": (
        "smb_files",
        {
            "sel": {"path|endswith": "\\IPC$", "name|endswith": ["_stdout", "-stdout"]},
            "condition": "sel",
        },
    ),
    "smb_exe_admin_share": (
        "smb_files",
        {
            "sel": {
                "action": "SMB::FILE_WRITE",
                "path|contains": "ADMIN$",
                "name|endswith": ".exe",
            },
            "condition": "sel",
        },
    ),
    "smb_keyword": ("smb_files", {"kw": ["RemCom"], "condition": "kw"}),
    "smb_admin_mapping": ("smb_mapping", {"sel": {"path|endswith": "C$"}, "condition": "sel"}),
    "rpc_create_service": (
        "dce_rpc",
        {
            "op1": {"endpoint": "svcctl", "operation": "CreateServiceW"},
            "op2": {"endpoint": "atsvc", "operation": "JobAdd"},
            "condition": "1 of op*",
        },
    ),
    "rpc_efs": ("dce_rpc", {"sel": {"operation|startswith": "efs"}, "condition": "sel"}),
    "kerberos_rc4_tgs": (
        "kerberos",
        {
            "sel": {"request_type": "TGS", "cipher": "rc4-hmac"},
            "machine": {"service|startswith": "$"},
            "condition": "sel and not machine",
        },
    ),
    "rdp_from_outside": (
        "rdp",
        {
            "internal": {"id.orig_h|cidr": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]},
            "condition": "not internal",
        },
    ),
    "x509_serial": ("x509", {"sel": {"certificate.serial": "8BB00EE"}, "condition": "sel"}),
    "ssl_ja3": (
        "ssl",
        {
            "sel": {"ja3": "e7d705a3286e19ea42f587b344ee6865", "established": "true"},
            "condition": "sel",
        },
    ),
}


def rule_doc(name: str, service: str, detection: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": name,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"canhgac-test:zeek:{name}")),
        "status": "test",
        "level": "high",
        "logsource": {"product": "zeek", "service": service},
        "detection": detection,
    }


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DetectionEngine:
    directory = tmp_path_factory.mktemp("zeek-rules")
    for name, (service, detection) in RULES.items():
        (directory / f"{name}.yml").write_text(yaml.safe_dump(rule_doc(name, service, detection)))
    engine, result = DetectionEngine.from_paths([directory], clock_ns=lambda: T0)
    assert [str(e) for e in result.errors] == []
    assert result.loaded == len(RULES)
    return engine


def parse(log: str, *lines: str) -> events_pb2.Event:
    parser = ZeekLogParser(log, agent_id="sensor-agent", host="sensor1", clock_ns=lambda: T0)
    out = [p for p in (parser.parse(line) for line in lines) if p is not None]
    assert len(out) == 1, out
    assert isinstance(out[0], events_pb2.Event), out
    return out[0]


def matched(engine: DetectionEngine, event: events_pb2.Event) -> set[str]:
    return {a.rule_title for a in engine.process([event])}


@pytest.mark.parametrize(
    ("log", "lines", "expected"),
    [
        ("http", [s.HTTP_WEBDAV_PUT], {"webdav_put_external", "http_not_get"}),
        ("http", [s.HTTP_WEBDAV_EXE], {"webdav_exe_w3c_names"}),
        ("http", [s.HTTP_WEBSHELL], {"http_not_get"}),
        ("http", [s.HTTP_PLAIN], set()),
        ("http", [*s.HTTP_HEADER, s.HTTP_TSV_WEBSHELL], set()),  # TSV; a GET
        ("smb_files", [s.SMB_PSEXEC_PIPE], {"smb_pipe_stdout", "smb_keyword"}),
        ("smb_files", [s.SMB_WRITE_EXE], {"smb_exe_admin_share"}),
        ("smb_files", [s.SMB_READ_DOC], set()),
        ("smb_files", [*s.SMB_HEADER, s.SMB_TSV_ESCAPED], set()),
        ("smb_mapping", [s.SMB_MAPPING], {"smb_admin_mapping"}),
        ("dce_rpc", [s.DCE_RPC_CREATE_SERVICE], {"rpc_create_service"}),
        ("dce_rpc", [s.DCE_RPC_EFS], {"rpc_efs"}),
        ("kerberos", [s.KERBEROS_TGS_RC4], {"kerberos_rc4_tgs"}),
        ("kerberos", [*s.KERBEROS_HEADER, s.KERBEROS_TSV_FAIL], set()),
        ("rdp", [s.RDP_FROM_INTERNET], {"rdp_from_outside"}),
        ("x509", [s.X509_COBALT_LIKE], {"x509_serial"}),
        ("ssl", [s.SSL_ISO_TS], {"ssl_ja3"}),
    ],
)
def test_zeek_records_meet_exactly_the_rules_of_their_log(
    engine: DetectionEngine, log: str, lines: list[str], expected: set[str]
) -> None:
    assert matched(engine, parse(log, *lines)) == expected


def test_rdp_rule_ignores_internal_clients_and_other_logs(engine: DetectionEngine) -> None:
    internal = s.RDP_FROM_INTERNET.replace("192.0.2.77", "10.20.1.15")
    assert matched(engine, parse("rdp", internal)) == set()
    # An SMB record from an outside address is not an RDP connection.
    outside_smb = s.SMB_READ_DOC.replace("10.20.1.15", "192.0.2.77")
    assert matched(engine, parse("smb_files", outside_smb)) == set()


def test_http_rules_never_meet_other_records(engine: DetectionEngine) -> None:
    # http_not_get matches every http record that is not a GET: an smb_files record has no
    # method at all, and must still never meet it; nor must a host event.
    for log, line in (("smb_files", s.SMB_WRITE_EXE), ("dce_rpc", s.DCE_RPC_EFS)):
        assert "http_not_get" not in matched(engine, parse(log, line))
    flow = events_pb2.Event(
        id="f1", time_ns=T0, agent_id="a", host="h", category="network", type="connection"
    )
    assert matched(engine, flow) == set()


def processed(service: str, detection: dict[str, Any]) -> Any:
    doc = rule_doc("t", service, detection)
    rule = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    canhgac_pipeline().apply(rule)
    return rule


def rule_anchors(rule: Any) -> Any:
    found: set[Any] = set()
    for condition in rule.detection.parsed_condition:
        part = anchors(condition.parsed)
        assert part is not None
        found |= part
    return frozenset(found)


def test_zeek_rules_are_indexed_by_a_discriminating_field() -> None:
    http = processed(*RULES["http_not_get"])
    rdp = processed(*RULES["rdp_from_outside"])
    dce = processed(*RULES["rpc_create_service"])
    for rule in (http, rdp, dce):
        found = rule_anchors(rule)
        assert found
        assert not any(a.field in ("event.category", "event.type") for a in found)
    index = RuleIndex([http, rdp, dce], rule_anchors)
    smb = event_fields(parse("smb_files", s.SMB_WRITE_EXE))
    efs = event_fields(parse("dce_rpc", s.DCE_RPC_EFS))
    create = event_fields(parse("dce_rpc", s.DCE_RPC_CREATE_SERVICE))
    flow = {"event.category": "network", "event.type": "connection", "source.ip": "192.0.2.1"}
    # A negated rule (http_not_get, rdp_from_outside) is still anchored on its log.
    assert http not in index.candidates(smb)
    assert rdp not in index.candidates(flow)
    assert list(index.candidates(flow)) == []
    assert dce not in index.candidates(smb)
    assert dce in index.candidates(create)
    assert dce in index.candidates(efs)


def test_mapping_targets_and_conditions() -> None:
    for ls in zeek.LOGSOURCES:
        assert ls.product == "zeek"
        assert ls.service in zeek.ZEEK_COLUMNS
        assert ls.conditions["canhgac.log.name"] == ls.service
        assert all(is_known_field(name) for name in ls.conditions)
        assert all(t.startswith(LOG_FIELD_PREFIX) and is_known_field(t) for t in ls.fields.values())
    assert "dns" not in zeek.ZEEK_COLUMNS  # the pipeline's zeek/dns row stays the sensor's
    # The actions the conditions ask for are the ones the agent's parser sets.
    assert set(zeek.ACTIONS) == set(zeek.ZEEK_COLUMNS)
    for log, action in zeek.ACTIONS.items():
        assert EVENT_KINDS[log][1] == action


@pytest.mark.parametrize(
    ("service", "detection", "reason"),
    [
        ("http", {"sel": {"Z": 0}, "condition": "sel"}, "unknown field 'Z'"),
        ("smb_files", {"sel": {"uri": "/x"}, "condition": "sel"}, "unknown field 'uri'"),
        ("ntp", {"sel": {"mode": 3}, "condition": "sel"}, "logsource not mapped"),
    ],
)
def test_what_zeek_records_cannot_answer_is_refused(
    tmp_path: Path, service: str, detection: dict[str, Any], reason: str
) -> None:
    (tmp_path / "r.yml").write_text(yaml.safe_dump(rule_doc("refused", service, detection)))
    _, result = DetectionEngine.from_paths([tmp_path])
    assert result.loaded == 0
    assert len(result.errors) == 1
    assert reason in result.errors[0].message
