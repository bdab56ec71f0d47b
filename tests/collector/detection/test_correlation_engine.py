"""DetectionEngine with value_count and temporal correlations: loading, feeding, refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from canhgac.v1 import events_pb2 as pb
from collector.detection.engine import DetectionEngine

ROOT = Path(__file__).resolve().parents[3]
SSH_RULES = ROOT / "rules" / "linux" / "auth" / "ssh_password_guessing.yml"
GUESSING_ID = "fa6ca2bf-9cda-4489-9e0f-85474f98762d"
FOLLOWED_ID = "1d2c3b4a-0000-4000-8000-0000000000a2"
SPRAY_ID = "1d2c3b4a-0000-4000-8000-0000000000a3"
S = 1_000_000_000
T0 = 1_700_000_000 * S
NOW = T0 + 3600 * S

SUCCESS = """\
    title: SSH successful password login
    id: 1d2c3b4a-0000-4000-8000-0000000000a1
    name: canhgac_test_ssh_success
    logsource: {product: linux, service: sshd}
    detection:
      sel:
        event.category: authentication
        event.action: ssh_login
        event.outcome: success
      condition: sel
    level: low
    """

CORRELATIONS = """\
    title: SSH login after password failures
    id: 1d2c3b4a-0000-4000-8000-0000000000a2
    correlation:
      type: temporal_ordered
      rules: [canhgac_ssh_failed_login, canhgac_test_ssh_success]
      group-by: [source.ip]
      timespan: 10m
    level: critical
    ---
    title: One address tries many user names
    id: 1d2c3b4a-0000-4000-8000-0000000000a3
    correlation:
      type: value_count
      rules: [canhgac_ssh_failed_login]
      group-by: [source.ip]
      timespan: 5m
      condition: {gte: 3, field: user.name}
    level: high
    """

_seq = iter(range(1_000_000))


def login(
    t: int, ip: str = "203.0.113.7", user: str = "root", *, ok: bool = False, **kw: Any
) -> pb.Event:
    return pb.Event(
        id=f"ev{next(_seq)}",
        time_ns=t,
        agent_id=kw.pop("agent", "agent-1"),
        host="web1",
        category="authentication",
        action="ssh_login",
        outcome=pb.OUTCOME_SUCCESS if ok else pb.OUTCOME_FAILURE,
        auth=pb.AuthEvent(user=user, source_ip=ip, method="password", process_name="sshd"),
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def rule_dir(tmp_path: Path, *extra: str) -> Path:
    write(tmp_path, "ssh.yml", SSH_RULES.read_text())
    write(tmp_path, "success.yml", SUCCESS)
    for i, text in enumerate(extra or (CORRELATIONS,)):
        write(tmp_path, f"corr{i}.yml", text)
    return tmp_path


def engine_for(path: Path) -> DetectionEngine:
    eng, result = DetectionEngine.from_paths([path], clock_ns=lambda: NOW)
    assert result.errors == []
    return eng


def test_failures_then_success_raise_the_ordered_alert(tmp_path: Path) -> None:
    eng = engine_for(rule_dir(tmp_path))
    events = [login(T0), login(T0 + 30 * S), login(T0 + 60 * S, ok=True)]
    alerts = eng.process(events)
    assert [(a.rule_id, list(a.event_ids)) for a in alerts] == [
        (FOLLOWED_ID, [events[1].id, events[2].id])
    ]
    assert alerts[0].first_seen_ns == T0 + 30 * S


def test_success_first_or_from_elsewhere_raises_nothing(tmp_path: Path) -> None:
    eng = engine_for(rule_dir(tmp_path))
    assert eng.process([login(T0, ok=True), login(T0 + S)]) == []
    assert eng.process([login(T0 + 2 * S, "198.51.100.1", ok=True)]) == []
    assert eng.process([login(T0 + 11 * 60 * S, ok=True)]) == []  # the failure is 11 min old


def test_many_user_names_from_one_address(tmp_path: Path) -> None:
    eng = engine_for(rule_dir(tmp_path))
    alerts = eng.process([login(T0 + i * S, user=u) for i, u in enumerate(["a", "b", "a", "c"])])
    assert [(a.rule_id, a.event_count) for a in alerts] == [(SPRAY_ID, 3)]
    assert sorted(type(c).__name__ for c in eng.correlations) == [
        "EventCountCorrelation",
        "TemporalCorrelation",
        "ValueCountCorrelation",
    ]
    assert set(eng.correlations_by_rule) == {GUESSING_ID, FOLLOWED_ID, SPRAY_ID}


BOTH = """\
    title: any ssh login
    name: t_any_login
    logsource: {product: linux, service: sshd}
    detection: {sel: {event.action: ssh_login}, condition: sel}
    ---
    title: any failure
    name: t_any_failure
    logsource: {product: linux}
    detection: {sel: {event.outcome: failure}, condition: sel}
    ---
    title: login and failure
    id: 1d2c3b4a-0000-4000-8000-0000000000b1
    correlation:
      type: temporal
      rules: [t_any_login, t_any_failure]
      group-by: [source.ip]
      timespan: 1m
    """


def test_an_event_matching_two_referenced_rules_counts_for_both(tmp_path: Path) -> None:
    eng = engine_for(rule_dir(tmp_path, BOTH))
    assert [a.rule_id for a in eng.process([login(T0)])] == ["1d2c3b4a-0000-4000-8000-0000000000b1"]


ALIASED = """\
    title: failed login towards an address
    name: t_failed_towards
    logsource: {product: linux, service: sshd}
    detection: {sel: {event.outcome: failure, event.category: authentication}, condition: sel}
    ---
    title: failure towards an address, then a login from it
    id: 1d2c3b4a-0000-4000-8000-0000000000c1
    correlation:
      type: temporal_ordered
      rules: [t_failed_towards, canhgac_test_ssh_success]
      group-by: [peer]
      timespan: 1m
      aliases:
        peer:
          t_failed_towards: destination.ip
          canhgac_test_ssh_success: source.ip
    """


def test_aliases_group_different_fields_together(tmp_path: Path) -> None:
    eng = engine_for(rule_dir(tmp_path, ALIASED))
    outbound = login(T0, "10.0.0.1")
    outbound.auth.destination_ip = "198.51.100.5"
    alerts = eng.process([outbound, login(T0 + S, "198.51.100.5", ok=True)])
    assert [(a.rule_id, dict(a.group)) for a in alerts] == [
        ("1d2c3b4a-0000-4000-8000-0000000000c1", {"peer": "198.51.100.5"})
    ]


@pytest.mark.parametrize(
    ("correlation", "message"),
    [
        (
            "type: temporal\n  rules: [canhgac_ssh_password_guessing, canhgac_test_ssh_success]",
            "references correlation 'canhgac_ssh_password_guessing'; chains are unsupported",
        ),
        (
            "type: temporal\n  rules: [canhgac_ssh_failed_login, canhgac_test_ssh_success]\n"
            "  condition: canhgac_ssh_failed_login and canhgac_test_ssh_success",
            "extended correlation conditions are unsupported",
        ),
        (
            "type: temporal_ordered\n"
            "  rules: [canhgac_ssh_failed_login, canhgac_test_ssh_success]\n"
            "  condition: {gte: 1}",
            "temporal_ordered takes no condition other than all rules in order",
        ),
        (
            "type: value_count\n  rules: [canhgac_ssh_failed_login]\n"
            "  condition: {gte: 3, field: user.nam}",
            "unknown condition field 'user.nam'",
        ),
        (
            "type: temporal\n  rules: [canhgac_ssh_failed_login, canhgac_test_ssh_success]\n"
            "  aliases: {peer: {canhgac_ssh_failed_login: source.ip}}",
            "alias 'peer' must map exactly the referenced rules",
        ),
        (
            "type: temporal\n  rules: [canhgac_ssh_failed_login, canhgac_test_ssh_success]\n"
            "  group-by: [peer]",
            "unknown group-by field 'peer'",
        ),
    ],
)
def test_unsupported_correlations_are_refused(
    tmp_path: Path, correlation: str, message: str
) -> None:
    text = (
        "title: refused\nid: 1d2c3b4a-0000-4000-8000-0000000000d1\n"
        f"correlation:\n  {correlation}\n  timespan: 1m\n"
    )
    _, result = DetectionEngine.from_paths([rule_dir(tmp_path, text)], clock_ns=lambda: NOW)
    assert [e.rule_id for e in result.errors] == ["1d2c3b4a-0000-4000-8000-0000000000d1"]
    assert message in result.errors[0].message
