"""The national centre destination: one JSON report per alert or incident, POSTed over HTTPS
with mutual TLS.

The centre's own wire format is not published, so the payload follows a schema we publish
(schemas/national-incident-v1.schema.json) and `field_map` renames fields to follow the
centre's names once they are known. Every payload is minimised first (collector/forward/
minimise.py: no internal address leaves unless the policy keeps it) and checked against the
schema before it is sent, so a payload we would be ashamed of never leaves.

The receiver answers per item: 2xx accepted, 409 already received (accepted: the alert or
incident id is the Idempotency-Key), another 4xx refused for good (quarantined), 5xx or a
network failure retried later.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema
from pydantic import Field, field_validator

from canhgac.config import StrictModel
from canhgac.v1 import alert_pb2
from collector.dossiers.clock import VN_TZ
from collector.dossiers.incidents import Incident
from collector.forward.minimise import MinimisePolicy, minimise_alert, minimise_incident
from collector.forward.model import DeliveryError, Outgoing

log = logging.getLogger("canhgac.collector.forward")

SCHEMA_VERSION = "1"
SCHEMA_FILE = "national-incident-v1.schema.json"
_SEVERITY = {
    alert_pb2.SEVERITY_INFORMATIONAL: "informational",
    alert_pb2.SEVERITY_LOW: "low",
    alert_pb2.SEVERITY_MEDIUM: "medium",
    alert_pb2.SEVERITY_HIGH: "high",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}


class NationalJsonSettings(StrictModel):
    """Where the centre listens and the certificates of the mutual TLS connection.

    `ca_file` verifies the centre (verification is always on); `client_cert_file` and
    `client_key_file` are this collector's certificate issued or accepted by the centre.
    `field_map` renames fields of the published schema, dotted path to the centre's name:
    {"incident.public_ips": "dia_chi_ip"} renames that key where it stands.
    """

    kind: Literal["national_json"] = "national_json"
    url: str = Field(pattern=r"^https://[^\s]+$")
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    timeout_s: float = Field(10.0, gt=0, le=300)
    field_map: dict[str, str] = Field(default_factory=dict)

    @field_validator("field_map")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for path, name in value.items():
            if not path or not name or "." in name:
                raise ValueError(f"{path!r}: a dotted path mapped to one field name")
        return value


@functools.cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of version 1 (shipped as package data)."""
    text = resources.files("collector.forward").joinpath(f"schemas/{SCHEMA_FILE}").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    validator: jsonschema.protocols.Validator = cls(schema(), format_checker=cls.FORMAT_CHECKER)
    return validator


def schema_errors(payload: Mapping[str, Any]) -> list[str]:
    """What makes `payload` invalid against the schema (empty when valid)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in _validator().iter_errors(payload)
    ]


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, VN_TZ).isoformat()


def alert_payload(alert: alert_pb2.Alert, *, collector: str, queued_ns: int) -> dict[str, Any]:
    """The report of one (already minimised) alert, in the unmapped form."""
    first = alert.first_seen_ns or alert.created_ns
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "alert",
        "id": alert.id,
        "queued_at": _time(queued_ns),
        "source": {"collector": collector, "origin": alert.origin},
        "system": {"id": alert.system_id, "level": alert.system_level or None},
        "alert": {
            "rule_id": alert.rule_id,
            "rule_title": alert.rule_title,
            "category": alert.category,
            "severity": _SEVERITY.get(alert.severity, "unknown"),
            "created_at": _time(alert.created_ns),
            "first_seen_at": _time(first),
            "last_seen_at": _time(alert.last_seen_ns or first),
            "host": alert.host,
            "agent_id": alert.agent_id,
            "summary": alert.summary,
            "incident_id": alert.incident_id,
            "event_count": alert.event_count,
            "mitre_techniques": list(alert.mitre_techniques),
            "group": dict(sorted(alert.group.items())),
        },
    }


def incident_payload(incident: Incident, *, collector: str, queued_ns: int) -> dict[str, Any]:
    """The report of one (already minimised) incident: the Mẫu 03 fields."""
    d = incident.model_dump(mode="json")
    keys = (
        "report_code",
        "title",
        "description",
        "detected_at",
        "reported_at",
        "category",
        "severity",
        "status",
        "detection_methods",
        "notified",
        "host_os",
        "services",
        "services_other",
        "controls",
        "controls_other",
        "public_ips",
        "domains",
        "purpose",
        "attachments",
        "attachments_other",
        "confidential",
        "support_requested",
        "personal_data_breach",
        "alert_ids",
    )
    body = {k: d[k] for k in keys}
    body["detected_at"] = incident.detected_at.astimezone(VN_TZ).isoformat()
    if incident.reported_at is not None:
        body["reported_at"] = incident.reported_at.astimezone(VN_TZ).isoformat()
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "incident",
        "id": incident.id,
        "queued_at": _time(queued_ns),
        "source": {"collector": collector},
        "system": {
            "id": incident.system_id,
            "level": incident.system_level,
            "security_provider": incident.security_provider,
            "connectivity_providers": list(incident.connectivity_providers),
        },
        "reporter": d["reporter"],
        "contact": d["contact"],
        "incident": body,
    }


def apply_field_map(payload: dict[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `payload` with each mapped dotted path's key renamed where it stands."""
    out: dict[str, Any] = json.loads(json.dumps(payload))
    for path, name in field_map.items():
        *parents, last = path.split(".")
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[name] = node.pop(last)
    return out


def build_payload(
    item: Outgoing, *, collector: str, policy: MinimisePolicy, field_map: Mapping[str, str]
) -> dict[str, Any] | None:
    """The body sent for `item`; None when the policy withholds it (a confidential incident).

    Raises DeliveryError (permanent) when the item carries nothing or the payload breaks the
    schema: sending it again could not help.
    """
    queued = item.item.created_ns
    if item.alert is not None:
        payload = alert_payload(
            minimise_alert(item.alert, policy), collector=collector, queued_ns=queued
        )
    elif item.incident is not None:
        minimal = minimise_incident(item.incident, policy)
        if minimal is None:
            return None
        payload = incident_payload(minimal, collector=collector, queued_ns=queued)
    else:
        raise DeliveryError(
            "missing", f"{item.item.kind} {item.item.item_id} is not stored", permanent=True
        )
    errors = schema_errors(payload)
    if errors:
        raise DeliveryError("invalid", "; ".join(errors[:3]), permanent=True)
    return apply_field_map(payload, field_map)


def client_tls(settings: NationalJsonSettings) -> ssl.SSLContext:
    """Verifies the centre against `ca_file` and presents our certificate. Never unverified."""
    context = ssl.create_default_context(cafile=str(settings.ca_file))
    context.load_cert_chain(str(settings.client_cert_file), str(settings.client_key_file))
    return context


class NationalJsonDestination:
    """Destination (collector/forward/model.py) posting to the national centre."""

    def __init__(
        self,
        name: str,
        settings: NationalJsonSettings,
        *,
        collector: str,
        policy: MinimisePolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._settings = settings
        self._collector = collector
        self._policy = policy
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # Built at first use: the certificate files are read when a delivery happens, so a
        # renewed certificate is picked up after a failure closes the client.
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=client_tls(self._settings),
                timeout=self._settings.timeout_s,
                transport=self._transport,
            )
        return self._client

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        accepted: set[str] = set()
        for item in batch:
            try:
                await self._send_one(item)
            except DeliveryError:
                if not accepted:
                    raise
                break  # the rest is retried on the next round
            accepted.add(item.item.item_id)
        return accepted

    async def _send_one(self, item: Outgoing) -> None:
        payload = build_payload(
            item,
            collector=self._collector,
            policy=self._policy,
            field_map=self._settings.field_map,
        )
        if payload is None:
            log.info(
                "confidential incident withheld by policy",
                extra={"fields": {"destination": self.name, "incident_id": item.item.item_id}},
            )
            return
        try:
            response = await self._http().post(
                self._settings.url,
                content=json.dumps(payload, ensure_ascii=False).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": item.item.item_id,
                },
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError("timeout", f"no answer in time: {exc}") from None
        except (httpx.TransportError, ssl.SSLError, OSError) as exc:
            await self.close()
            text = str(exc) or type(exc).__name__
            reason = "tls" if "SSL" in text or "certificate" in text.lower() else "refused"
            raise DeliveryError(reason, text) from None
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            return
        detail = response.text[:200].replace("\n", " ")
        if 400 <= status < 500 and status not in (408, 429):
            raise DeliveryError("http_4xx", f"HTTP {status}: {detail}", permanent=True)
        raise DeliveryError("http_5xx" if status >= 500 else "http_4xx", f"HTTP {status}: {detail}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
