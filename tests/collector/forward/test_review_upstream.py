"""Review finding: a child collector's alert is bounded in every string field."""

from __future__ import annotations

import pytest
from google.protobuf.json_format import ParseDict

from canhgac.v1 import alert_pb2
from collector.forward.upstream_service import MAX_TEXT, alert_problem


def _alert(**fields: object) -> alert_pb2.Alert:
    return ParseDict({"id": "al-1", "rule_id": "r", **fields}, alert_pb2.Alert())


@pytest.mark.parametrize(
    "fields",
    [
        {"agent_id": "a" * (MAX_TEXT + 1)},
        {"system_id": "s" * (MAX_TEXT + 1)},
        {"incident_id": "i" * (MAX_TEXT + 1)},
        {"mitre_techniques": ["T" * (MAX_TEXT + 1)]},
        {"mitre_techniques": ["T1110"] * 20_001},
    ],
    ids=["agent_id", "system_id", "incident_id", "mitre-long", "mitre-many"],
)
def test_an_oversized_field_makes_the_alert_too_large(fields: dict[str, object]) -> None:
    assert alert_problem(_alert(**fields)) == "too_large"


def test_an_ordinary_alert_has_no_problem() -> None:
    assert alert_problem(_alert(agent_id="web-01", mitre_techniques=["T1110"])) == ""
