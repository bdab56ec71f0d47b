"""The national centre JSON destination: exact payloads, schema, minimisation, HTTP outcomes.

Every payload a test here builds is checked against the published schema (`checked`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from canhgac.v1 import alert_pb2
from collector.dossiers.clock import VN_TZ
from collector.dossiers.incidents import ContactPerson, DetectionMethod, Incident, Reporter
from collector.forward.minimise import MinimisePolicy
from collector.forward.model import DeliveryError, OutboxItem, Outgoing
from collector.forward.national import (
    NationalJsonDestination,
    NationalJsonSettings,
    apply_field_map,
    build_payload,
    schema,
    schema_errors,
)
from collector.forward.receiver.pki import make_receiver_pki

T0 = 1_790_000_000_000_000_000  # 2026-09-21T14:13:20Z
T0_LOCAL = "2026-09-21T21:13:20+07:00"


def known_alert() -> alert_pb2.Alert:
    a = alert_pb2.Alert(
        id="al-1",
        rule_id="ssh-brute-force",
        rule_title="SSH brute force",
        severity=alert_pb2.SEVERITY_HIGH,
        created_ns=T0 + 2_000_000_000,
        first_seen_ns=T0,
        last_seen_ns=T0 + 1_000_000_000,
        agent_id="web-01",
        host="web-01.tinh.gov.vn",
        system_id="portal",
        system_level=3,
        category="unauthorized_access",
        summary="5 failed logins from 14.160.1.7 and 10.1.2.3",
        event_count=5,
        origin="province-a",
        incident_id="INC-1",
    )
    a.mitre_techniques.append("T1110")
    a.group["source.ip"] = "14.160.1.7"
    a.group["destination.ip"] = "10.1.2.3"
    return a


def known_incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": "INC-1",
        "title": "SSH brute force on the portal",
        "system_id": "portal",
        "system_level": 3,
        "reporter": Reporter(name="Sở TT", address="1 Đường A", phone="0241", email="a@b.vn"),
        "contact": ContactPerson(name="Nguyễn An", title="CISO", phone="0912", email="an@b.vn"),
        "description": "Brute force from 14.160.1.7 against 192.168.1.5",
        "detected_at": dt.datetime.fromtimestamp(T0 / 1e9, VN_TZ),
        "detection_methods": (DetectionMethod(kind="ids"),),
        "public_ips": ("113.160.5.9",),
        "domains": ("portal.tinh.gov.vn",),
        "category": "unauthorized_access",
        "alert_ids": ("al-1",),
    }
    fields.update(changes)
    return Incident(**fields)


def item(kind: str, item_id: str) -> OutboxItem:
    return OutboxItem("national", kind, item_id, created_ns=T0)  # type: ignore[arg-type]  # str kind


def checked(payload: dict[str, Any] | None) -> dict[str, Any]:
    assert payload is not None
    assert schema_errors(payload) == []
    return payload


def payload_of(out: Outgoing, policy: MinimisePolicy | None = None) -> dict[str, Any]:
    return checked(
        build_payload(out, collector="province-a", policy=policy or MinimisePolicy(), field_map={})
    )


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())


def test_the_exact_payload_of_a_known_alert() -> None:
    payload = payload_of(Outgoing(item("alert", "al-1"), alert=known_alert()))
    assert payload == {
        "schema_version": "1",
        "kind": "alert",
        "id": "al-1",
        "queued_at": T0_LOCAL,
        "source": {"collector": "province-a", "origin": "province-a"},
        "system": {"id": "portal", "level": 3},
        "alert": {
            "rule_id": "ssh-brute-force",
            "rule_title": "SSH brute force",
            "category": "unauthorized_access",
            "severity": "high",
            "created_at": "2026-09-21T21:13:22+07:00",
            "first_seen_at": T0_LOCAL,
            "last_seen_at": "2026-09-21T21:13:21+07:00",
            "host": "web-01.tinh.gov.vn",
            "agent_id": "web-01",
            "summary": "5 failed logins from 14.160.1.7 and [internal]",
            "incident_id": "INC-1",
            "event_count": 5,
            "mitre_techniques": ["T1110"],
            "group": {"source.ip": "14.160.1.7"},
        },
    }


def test_the_exact_payload_of_a_known_incident() -> None:
    payload = payload_of(Outgoing(item("incident", "INC-1"), incident=known_incident()))
    assert payload == {
        "schema_version": "1",
        "kind": "incident",
        "id": "INC-1",
        "queued_at": T0_LOCAL,
        "source": {"collector": "province-a"},
        "system": {
            "id": "portal",
            "level": 3,
            "security_provider": "",
            "connectivity_providers": [],
        },
        "reporter": {"name": "Sở TT", "address": "1 Đường A", "phone": "0241", "email": "a@b.vn"},
        "contact": {"name": "Nguyễn An", "title": "CISO", "phone": "0912", "email": "an@b.vn"},
        "incident": {
            "report_code": "",
            "title": "SSH brute force on the portal",
            "description": "Brute force from 14.160.1.7 against [internal]",
            "detected_at": T0_LOCAL,
            "reported_at": None,
            "category": "unauthorized_access",
            "severity": "normal",
            "status": "not_handled",
            "detection_methods": [{"kind": "ids", "detail": ""}],
            "notified": [],
            "host_os": "",
            "services": [],
            "services_other": "",
            "controls": [],
            "controls_other": "",
            "public_ips": ["113.160.5.9"],
            "domains": ["portal.tinh.gov.vn"],
            "purpose": "",
            "attachments": [],
            "attachments_other": "",
            "confidential": False,
            "support_requested": "",
            "personal_data_breach": False,
            "alert_ids": ["al-1"],
        },
    }


def test_private_addresses_never_reach_the_payload_unless_the_policy_keeps_them() -> None:
    out = Outgoing(item("alert", "al-1"), alert=known_alert())
    text = json.dumps(payload_of(out))
    assert "10.1.2.3" not in text
    assert "192.168." not in json.dumps(
        payload_of(Outgoing(item("incident", "INC-1"), incident=known_incident()))
    )
    kept = json.dumps(payload_of(out, MinimisePolicy(keep_private_addresses=True)))
    assert "10.1.2.3" in kept


def test_a_confidential_incident_follows_its_policy() -> None:
    out = Outgoing(item("incident", "INC-1"), incident=known_incident(confidential=True))
    summary = payload_of(out)
    assert summary["incident"]["description"] == ""
    assert summary["reporter"]["name"] == ""
    withheld = build_payload(
        out,
        collector="province-a",
        policy=MinimisePolicy(confidential_incidents="withhold"),
        field_map={},
    )
    assert withheld is None
    full = payload_of(out, MinimisePolicy(confidential_incidents="full"))
    assert full["incident"]["title"] == "SSH brute force on the portal"


def test_the_field_map_renames_fields_where_they_stand() -> None:
    payload = payload_of(Outgoing(item("incident", "INC-1"), incident=known_incident()))
    mapped = apply_field_map(
        payload, {"incident.public_ips": "dia_chi_ip", "id": "ma_su_co", "nope.x": "y"}
    )
    assert mapped["incident"]["dia_chi_ip"] == ["113.160.5.9"]
    assert "public_ips" not in mapped["incident"]
    assert mapped["ma_su_co"] == "INC-1"
    assert payload["id"] == "INC-1"  # the original is not changed


def test_an_item_whose_record_is_gone_is_refused_for_good() -> None:
    with pytest.raises(DeliveryError) as caught:
        build_payload(
            Outgoing(item("alert", "gone")), collector="p", policy=MinimisePolicy(), field_map={}
        )
    assert (caught.value.reason, caught.value.permanent) == ("missing", True)


def test_a_payload_breaking_the_schema_is_never_sent() -> None:
    bad = known_alert()
    bad.id = "has spaces"
    with pytest.raises(DeliveryError) as caught:
        build_payload(
            Outgoing(item("alert", "x"), alert=bad),
            collector="p",
            policy=MinimisePolicy(),
            field_map={},
        )
    assert (caught.value.reason, caught.value.permanent) == ("invalid", True)


def test_the_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        NationalJsonSettings(
            url="http://centre/reports",
            ca_file=Path("/ca"),
            client_cert_file=Path("/c"),
            client_key_file=Path("/k"),
        )


@pytest.mark.parametrize(
    ("status", "accepted", "reason", "permanent"),
    [
        (201, True, "", False),
        (200, True, "", False),
        (409, True, "", False),
        (400, False, "http_4xx", True),
        (422, False, "http_4xx", True),
        (429, False, "http_4xx", False),
        (500, False, "http_5xx", False),
        (503, False, "http_5xx", False),
    ],
)
async def test_http_answers_map_to_accepted_retry_or_quarantine(
    tmp_path: Path, status: int, accepted: bool, reason: str, permanent: bool
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="detail")

    pki = make_receiver_pki(tmp_path, ["127.0.0.1"], "province-a")
    settings = NationalJsonSettings(
        url="https://127.0.0.1:1/national/v1/reports",
        ca_file=pki.ca_file,
        client_cert_file=pki.client_cert,
        client_key_file=pki.client_key,
    )
    dest = NationalJsonDestination(
        "national",
        settings,
        collector="province-a",
        policy=MinimisePolicy(),
        transport=httpx.MockTransport(answer),
    )
    out = Outgoing(item("alert", "al-1"), alert=known_alert())
    try:
        if accepted:
            assert await dest.send([out]) == {"al-1"}
        else:
            with pytest.raises(DeliveryError) as caught:
                await dest.send([out])
            assert (caught.value.reason, caught.value.permanent) == (reason, permanent)
    finally:
        await dest.close()
    (request,) = seen
    assert request.headers["Idempotency-Key"] == "al-1"
    assert request.headers["Content-Type"] == "application/json"
    assert checked(json.loads(request.content))["id"] == "al-1"


async def test_a_failure_after_accepted_items_returns_those_accepted(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(503 if body["id"] == "al-2" else 201)

    pki = make_receiver_pki(tmp_path, ["127.0.0.1"], "province-a")
    settings = NationalJsonSettings(
        url="https://127.0.0.1:1/r",
        ca_file=pki.ca_file,
        client_cert_file=pki.client_cert,
        client_key_file=pki.client_key,
    )
    dest = NationalJsonDestination(
        "national",
        settings,
        collector="p",
        policy=MinimisePolicy(),
        transport=httpx.MockTransport(answer),
    )
    batch = []
    for n in (1, 2, 3):
        a = known_alert()
        a.id = f"al-{n}"
        batch.append(Outgoing(item("alert", a.id), alert=a))
    assert await dest.send(batch) == {"al-1"}
    with pytest.raises(DeliveryError, match="503"):
        await dest.send(batch[1:])
    await dest.close()


def national_entry(name: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "national_json",
        "url": "https://centre.example/reports",
        "ca_file": str(tmp_path / "ca.pem"),
        "client_cert_file": str(tmp_path / "c.pem"),
        "client_key_file": str(tmp_path / "c.key"),
        "minimise": {"keep_private_addresses": True},
    }


def test_destinations_are_configured_and_built_by_kind(tmp_path: Path) -> None:
    from collector.config import ForwardConfig
    from collector.forward.registry import build_destinations

    off = {**national_entry("soc-2", tmp_path), "enabled": False}
    config = ForwardConfig.model_validate(
        {"destinations": [national_entry("national", tmp_path), off]}
    )
    ((entry, dest),) = build_destinations(config, "province-a")
    assert (entry.name, dest.name, type(dest)) == ("national", "national", NationalJsonDestination)
    assert entry.minimise.keep_private_addresses


@pytest.mark.parametrize(
    ("names", "message"),
    [(["a", "a"], "unique"), (["Bad Name"], "pattern")],
)
def test_destination_names_are_unique_and_simple(
    tmp_path: Path, names: list[str], message: str
) -> None:
    from pydantic import ValidationError

    from collector.config import ForwardConfig

    with pytest.raises(ValidationError, match=message):
        ForwardConfig.model_validate({"destinations": [national_entry(n, tmp_path) for n in names]})


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from collector.config import ForwardConfig

    entry = {**national_entry("x", tmp_path), "kind": "carrier_pigeon"}
    with pytest.raises(ValidationError, match="carrier_pigeon"):
        ForwardConfig.model_validate({"destinations": [entry]})
