"""The STIX/TAXII destination: alerts and incidents as STIX 2.1 objects pushed to a TAXII 2.1
collection (`POST {api_root}/collections/{id}/objects/`).

One batch is one TAXII envelope; the objects are built by stix_objects.py from the minimised
alert or incident, with deterministic ids so a retry re-sends the same objects and the server
keeps one copy. The server answers a status resource: an item is accepted when its main
object (the sighting of an alert, the incident) is among the successes and none of its other
objects failed; a pending status is polled a few times, and what is still pending is retried
on the next round. A confidential incident withheld by the minimisation policy counts as
delivered: there is nothing to send, ever.

Authentication is HTTP basic (`user:password`) or a bearer token read from `secrets_file`
(never logged); the server certificate is always verified, against `ca_file` when given.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import httpx
from pydantic import Field, model_validator

from canhgac.config import StrictModel
from collector.forward.minimise import MinimisePolicy, minimise_alert, minimise_incident
from collector.forward.model import DeliveryError, Outgoing
from collector.forward.stix_objects import (
    alert_objects,
    extension_definition,
    incident_objects,
    province_identity,
)

log = logging.getLogger("canhgac.collector.forward")

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


class StixTaxiiSettings(StrictModel):
    """A TAXII 2.1 collection and who we are in STIX.

    `api_root` is the API root URL (https://taxii.example/api1/); `identity_name` and
    `identity_sector` (a STIX industry sector, e.g. government-regional) describe the province.
    """

    kind: Literal["stix_taxii"] = "stix_taxii"
    api_root: str = Field(pattern=r"^https://[^\s]+$")
    collection_id: str = Field(pattern=r"^[A-Za-z0-9._~-]{1,128}$")
    identity_name: str = Field(min_length=1, max_length=200)
    identity_sector: str = Field("government-regional", pattern=r"^[a-z0-9-]{1,64}$")
    auth: Literal["none", "basic", "bearer"] = "bearer"
    secrets_file: Path | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    timeout_s: float = Field(10.0, gt=0, le=300)
    status_polls: int = Field(3, ge=0, le=100)
    status_poll_interval_s: float = Field(1.0, ge=0, le=60)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auth != "none" and self.secrets_file is None:
            raise ValueError(f"secrets_file: required with auth {self.auth}")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self


def objects_for(
    item: Outgoing, settings: StixTaxiiSettings, policy: MinimisePolicy
) -> list[dict[str, Any]] | None:
    """The STIX objects of one item (main object first, province identity and extension
    definition last), as JSON dicts; None when the policy withholds the item."""
    identity = province_identity(settings.identity_name, settings.identity_sector)
    extension = extension_definition(identity)
    if item.alert is not None:
        objects = alert_objects(minimise_alert(item.alert, policy), identity, extension.id)
    elif item.incident is not None:
        minimal = minimise_incident(item.incident, policy)
        if minimal is None:
            return None
        objects = incident_objects(minimal, identity, extension.id)
    else:
        raise DeliveryError(
            "missing", f"{item.item.kind} {item.item.item_id} is not stored", permanent=True
        )
    return [json.loads(o.serialize()) for o in [*objects, identity, extension]]


def envelope(per_item: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A TAXII envelope with every object once (shared ones such as the identity)."""
    unique: dict[str, dict[str, Any]] = {}
    for objects in per_item.values():
        for obj in objects:
            unique.setdefault(obj["id"], obj)
    return {"objects": list(unique.values())}


def accepted_items(status: dict[str, Any], per_item: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Item ids a TAXII status resource says were stored.

    `successes`, `failures` and `pendings` list {id, version}; a server may omit `successes`
    when it reports a complete status with counts only, then everything not failed or pending
    succeeded.
    """
    failed = {d.get("id") for d in status.get("failures") or [] if isinstance(d, dict)}
    pending = {d.get("id") for d in status.get("pendings") or [] if isinstance(d, dict)}
    if isinstance(status.get("successes"), list):
        ok = {d.get("id") for d in status["successes"] if isinstance(d, dict)}
    elif status.get("status") == "complete":
        everything = {o["id"] for objects in per_item.values() for o in objects}
        ok = everything - failed - pending
    else:
        ok = set()
    accepted = set()
    for item_id, objects in per_item.items():
        ids = {o["id"] for o in objects}
        if objects[0]["id"] in ok and not ids & (failed | pending):
            accepted.add(item_id)
    return accepted


def _tls(settings: StixTaxiiSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.client_cert_file and settings.client_key_file:
        context.load_cert_chain(str(settings.client_cert_file), str(settings.client_key_file))
    return context


def _auth_header(settings: StixTaxiiSettings) -> dict[str, str]:
    if settings.auth == "none" or settings.secrets_file is None:
        return {}
    try:
        secret = settings.secrets_file.read_text().strip()
    except OSError as exc:
        raise DeliveryError("config", f"cannot read the secrets file: {exc.strerror}") from None
    if settings.auth == "bearer":
        return {"Authorization": f"Bearer {secret}"}
    user, sep, password = secret.partition(":")
    if not sep:
        raise DeliveryError("config", "the secrets file must hold user:password for basic auth")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class StixTaxiiDestination:
    """Destination (collector/forward/model.py) pushing STIX 2.1 to a TAXII 2.1 collection."""

    def __init__(
        self,
        name: str,
        settings: StixTaxiiSettings,
        *,
        policy: MinimisePolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._settings = settings
        self._policy = policy
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=_tls(self._settings),
                timeout=self._settings.timeout_s,
                transport=self._transport,
                headers={"Accept": TAXII_MEDIA_TYPE, **_auth_header(self._settings)},
            )
        return self._client

    def _url(self, path: str) -> str:
        return self._settings.api_root.rstrip("/") + "/" + path

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        per_item: dict[str, list[dict[str, Any]]] = {}
        withheld: set[str] = set()
        for item in batch:
            objects = objects_for(item, self._settings, self._policy)
            if objects is None:
                withheld.add(item.item.item_id)
            else:
                per_item[item.item.item_id] = objects
        if not per_item:
            return withheld
        body = json.dumps(envelope(per_item), ensure_ascii=False).encode()
        status = await self._request(
            "POST",
            self._url(f"collections/{self._settings.collection_id}/objects/"),
            content=body,
            headers={"Content-Type": TAXII_MEDIA_TYPE},
        )
        for _ in range(self._settings.status_polls):
            if status.get("status") != "pending":
                break
            await asyncio.sleep(self._settings.status_poll_interval_s)
            status = await self._request("GET", self._url(f"status/{status.get('id')}/"))
        accepted = accepted_items(status, per_item)
        if not accepted and not withheld:
            failures = status.get("failures") or []
            detail = "; ".join(str(f.get("message", ""))[:100] for f in failures[:3])
            raise DeliveryError(
                "rejected" if failures else "pending",
                f"TAXII status {status.get('status')}: {detail or 'nothing stored yet'}",
            )
        return accepted | withheld

    async def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http().request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise DeliveryError("timeout", f"no answer in time: {exc}") from None
        except (httpx.TransportError, ssl.SSLError, OSError) as exc:
            await self.close()
            text = str(exc) or type(exc).__name__
            reason = "tls" if "SSL" in text or "certificate" in text.lower() else "refused"
            raise DeliveryError(reason, text) from None
        code = response.status_code
        if code >= 300:
            detail = response.text[:200].replace("\n", " ")
            reason = "http_5xx" if code >= 500 else "http_4xx"
            # 401/403: a wrong secret is fixed by the operator, then the item is retried.
            permanent = code in (400, 413, 415, 422)
            raise DeliveryError(reason, f"HTTP {code}: {detail}", permanent=permanent)
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError("protocol", f"HTTP {code}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise DeliveryError("protocol", "the TAXII answer is not a status resource")
        return answer

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def build(
    name: str,
    settings: StixTaxiiSettings,
    *,
    state_dir: Path,
    policy: MinimisePolicy | None = None,
) -> StixTaxiiDestination:
    """The registry's factory. `policy` defaults to the settings' own `minimise` when the
    settings are a full destination config (collector/config.py), else to the strict default."""
    del state_dir  # nothing kept locally: the TAXII server deduplicates
    chosen = policy or getattr(settings, "minimise", None) or MinimisePolicy()
    return StixTaxiiDestination(name, settings, policy=chosen)
