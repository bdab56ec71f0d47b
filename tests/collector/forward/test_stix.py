"""STIX 2.1 objects of alerts and incidents: exact content, determinism, validity."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac.v1 import alert_pb2
from collector.dossiers.incidents import Incident, SentReport
from collector.forward.minimise import MinimisePolicy
from collector.forward.model import ItemKind, OutboxItem, Outgoing
from collector.forward.stix import (
    StixTaxiiDestination,
    StixTaxiiSettings,
    accepted_items,
    envelope,
    objects_for,
)
from tests.collector.forward.stix_check import assert_valid_stix

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = StixTaxiiSettings(
    api_root="https://taxii.example/api1/",
    collection_id="c1",
    identity_name="Sở Thông tin và Truyền thông tỉnh Lạng Sơn",
    auth="none",
)
NS = 1_764_500_000_123_456_789


def known_alert(**changes: Any) -> alert_pb2.Alert:
    fields: dict[str, Any] = {
        "id": "01JDALERT0000000000000001",
        "rule_id": "ssh-brute-force",
        "rule_title": "SSH brute force",
        "severity": alert_pb2.SEVERITY_HIGH,
        "created_ns": NS,
        "first_seen_ns": NS - 60_000_000_000,
        "last_seen_ns": NS - 1_000_000_000,
        "agent_id": "web01",
        "host": "web01",
        "system_id": "cong-dich-vu-cong",
        "system_level": 3,
        "category": "unauthorized_access",
        "mitre_techniques": ["T1110"],
        "group": {
            "source.ip": "8.8.8.8",
            "destination.ip": "10.0.0.5",
            "process.executable": "/usr/sbin/sshd",
            "process.pid": "812",
        },
        "summary": "12 failed logins from 8.8.8.8 to 10.0.0.5",
        "event_count": 12,
        "origin": "lang-son",
        "incident_id": "INC-2026-0001",
    }
    fields.update(changes)
    return alert_pb2.Alert(**fields)


def known_incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": "INC-2026-0001",
        "title": "Unauthorised access to the e-services portal",
        "system_id": "cong-dich-vu-cong",
        "system_level": 3,
        "description": "Brute force from 8.8.8.8 reached host 192.168.1.20",
        "detected_at": dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
        "category": "unauthorized_access",
        "severity": "serious",
        "public_ips": ("8.8.8.8",),
        "domains": ("dichvucong.langson.gov.vn",),
        "alert_ids": ("01JDALERT0000000000000001",),
        "reports": (
            SentReport(kind="notice", sent_at=dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)),
        ),
    }
    fields.update(changes)
    return Incident(**fields)


def item(kind: ItemKind, item_id: str, **payload: Any) -> Outgoing:
    outbox = OutboxItem(destination="stix", kind=kind, item_id=item_id, created_ns=NS)
    return Outgoing(item=outbox, **payload)


def bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bundle",
        "id": "bundle--2f8c3d1a-4b5e-4c6d-8e7f-9a0b1c2d3e4f",
        "objects": objects,
    }


def _golden(name: str, actual: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(actual, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if os.environ.get("CANHGAC_REGOLD") == "1":
        path.write_text(text, "utf-8")
    assert text == path.read_text("utf-8")


def test_alert_objects_exact() -> None:
    objects = objects_for(item("alert", "a", alert=known_alert()), SETTINGS, MinimisePolicy())
    assert objects is not None
    assert_valid_stix(bundle(objects))
    _golden("stix_alert.json", objects)
    # The internal address is gone from everything sent.
    assert "10.0.0.5" not in json.dumps(objects)


def test_incident_objects_exact() -> None:
    objects = objects_for(
        item("incident", "INC-2026-0001", incident=known_incident()), SETTINGS, MinimisePolicy()
    )
    assert objects is not None
    assert_valid_stix(bundle(objects))
    _golden("stix_incident.json", objects)
    assert "192.168.1.20" not in json.dumps(objects)


def test_objects_are_deterministic() -> None:
    first = objects_for(item("alert", "a", alert=known_alert()), SETTINGS, MinimisePolicy())
    again = objects_for(item("alert", "a", alert=known_alert()), SETTINGS, MinimisePolicy())
    assert first == again
    other = objects_for(
        item("alert", "b", alert=known_alert(id="01JDALERT0000000000000002")),
        SETTINGS,
        MinimisePolicy(),
    )
    assert other is not None
    assert first is not None
    assert other[0]["id"] != first[0]["id"]
    # The rule's indicator and the province are shared.
    shared = {o["id"] for o in first} & {o["id"] for o in other}
    assert {i.split("--")[0] for i in shared} >= {"indicator", "identity", "extension-definition"}


def test_alert_without_observables_uses_the_rule_as_indicator() -> None:
    alert = known_alert(group={"user.name": "root"}, incident_id="", mitre_techniques=[])
    objects = objects_for(item("alert", "a", alert=alert), SETTINGS, MinimisePolicy())
    assert objects is not None
    assert_valid_stix(bundle(objects))
    assert [o["type"] for o in objects] == [
        "sighting",
        "indicator",
        "identity",
        "extension-definition",
    ]
    indicator = objects[1]
    assert (indicator["pattern_type"], indicator["pattern"]) == ("canhgac-rule", "ssh-brute-force")
    assert "observed_data_refs" not in objects[0]


def test_confidential_incident_withheld_or_summarised() -> None:
    secret = item("incident", "INC-9", incident=known_incident(id="INC-9", confidential=True))
    assert objects_for(secret, SETTINGS, MinimisePolicy(confidential_incidents="withhold")) is None
    summary = objects_for(secret, SETTINGS, MinimisePolicy())
    assert summary is not None
    assert_valid_stix(bundle(summary))
    assert summary[0]["name"] == "Incident INC-9"
    assert "description" not in summary[0]


group_values = st.one_of(
    st.sampled_from(["8.8.8.8", "10.1.2.3", "2606:4700::1111", "fe80::1", "example.com", "x y"]),
    st.text(max_size=20),
)
group_keys = st.sampled_from(
    [
        "source.ip",
        "destination.ip",
        "destination.domain",
        "url.domain",
        "file.path",
        "file.name",
        "file.hash.sha256",
        "process.name",
        "process.executable",
        "process.pid",
        "process.command_line",
        "process.working_directory",
        "user.name",
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(group_keys, group_values, max_size=6),
    st.text(max_size=40),
    st.sampled_from(["", "INC-1"]),
)
def test_every_alert_bundle_is_valid(group: dict[str, str], summary: str, incident: str) -> None:
    alert = known_alert(group=group, summary=summary, incident_id=incident)
    objects = objects_for(item("alert", "a", alert=alert), SETTINGS, MinimisePolicy())
    assert objects is not None
    assert_valid_stix(bundle(objects))


def test_envelope_has_each_object_once() -> None:
    per_item = {
        "a": objects_for(item("alert", "a", alert=known_alert()), SETTINGS, MinimisePolicy()),
        "b": objects_for(
            item("alert", "b", alert=known_alert(id="b2")), SETTINGS, MinimisePolicy()
        ),
    }
    sent = envelope({k: v for k, v in per_item.items() if v is not None})
    ids = [o["id"] for o in sent["objects"]]
    assert len(ids) == len(set(ids))
    assert_valid_stix(sent)


def _per_item() -> dict[str, list[dict[str, Any]]]:
    return {
        "a": [{"id": "sighting--1"}, {"id": "indicator--1"}, {"id": "identity--1"}],
        "b": [{"id": "sighting--2"}, {"id": "indicator--1"}, {"id": "identity--1"}],
    }


@pytest.mark.parametrize(
    ("status", "accepted"),
    [
        (
            {
                "status": "complete",
                "successes": [{"id": i} for i in ("sighting--1", "indicator--1", "identity--1")],
                "failures": [{"id": "sighting--2", "message": "bad"}],
            },
            {"a"},
        ),
        ({"status": "complete", "failure_count": 0}, {"a", "b"}),
        ({"status": "complete", "failures": [{"id": "identity--1"}]}, set()),
        (
            {
                "status": "pending",
                "successes": [{"id": "sighting--1"}],
                "pendings": [{"id": "sighting--2"}],
            },
            {"a"},
        ),
        ({"status": "pending"}, set()),
    ],
)
def test_status_interpretation(status: dict[str, Any], accepted: set[str]) -> None:
    assert accepted_items(status, _per_item()) == accepted


def test_settings_need_a_secret_for_auth() -> None:
    with pytest.raises(ValueError, match="secrets_file"):
        StixTaxiiSettings(
            api_root="https://taxii.example/api1/", collection_id="c1", identity_name="x"
        )
    with pytest.raises(ValueError, match="https"):
        StixTaxiiSettings(
            api_root="http://taxii.example/api1/",
            collection_id="c1",
            identity_name="x",
            auth="none",
        )


async def test_pending_status_is_polled_until_complete() -> None:
    """A server that stores asynchronously: the destination polls the status resource."""
    requests: list[str] = []
    posted: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            posted.extend(json.loads(request.content)["objects"])
            return httpx.Response(202, json={"id": "s1", "status": "pending"})
        done = [{"id": o["id"], "version": o.get("modified", "")} for o in posted]
        return httpx.Response(200, json={"id": "s1", "status": "complete", "successes": done})

    destination = StixTaxiiDestination(
        "stix",
        SETTINGS.model_copy(update={"status_poll_interval_s": 0.0}),
        policy=MinimisePolicy(),
        transport=httpx.MockTransport(answer),
    )
    try:
        assert await destination.send([item("alert", "a", alert=known_alert())]) == {"a"}
    finally:
        await destination.close()
    assert requests == ["POST /api1/collections/c1/objects/", "GET /api1/status/s1/"]
    assert_valid_stix({"objects": posted})
