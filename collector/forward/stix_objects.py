"""STIX 2.1 objects for alerts and incidents, built with the `stix2` package.

An alert becomes a sighting, by the province (an identity), of an indicator, with the
observed data of the alert's group: ipv4-addr, ipv6-addr, domain-name, process and file
objects. The indicator is a STIX pattern over those observables when there are some, else
the rule itself (pattern type `canhgac-rule`, pattern = rule id). An incident becomes a STIX
2.1 incident object; our fields travel in a property extension defined by the
extension-definition object below (see docs/operators/upstream.md). The link between them is
carried by the alert: an alert with an incident id adds `related-to` relationships from the
incident (whose id is known from the incident id) to its indicator and observed data.

Every id is derived from the alert, incident, rule or province name (uuid5 in our namespace,
stamped as version 4 because STIX asks SDOs for v4 ids), and every timestamp from the item
itself, so a retry produces byte-identical objects and a TAXII server deduplicates them by
id and version. Callers minimise the alert or incident first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import posixpath
import re
import uuid
from typing import Any

import stix2

from canhgac.v1 import alert_pb2
from collector.dossiers.incidents import Incident
from collector.dossiers.model import _hostname

NAMESPACE = uuid.UUID("0b7e6c52-3a51-4c1f-9f0e-5a2d8c4e7a10")
# The identity and extension definition never change meaning; a fixed time keeps them stable.
FIXED_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EXTENSION_NAME = "Canh Gac alert and incident properties"
EXTENSION_VERSION = "1.0.0"
EXTENSION_SCHEMA = (
    "Property extension of sighting and incident objects produced by Canh Gac collectors. "
    "On a sighting: alert_id, rule_id, severity (informational..critical), category (a "
    "national incident category id), system_id, system_level (1-5, 0 unknown), origin (the "
    "collector), incident_id, mitre_techniques. On an incident: incident_id, category, "
    "severity (normal, serious, national_security_or_major_disruption), system_level, status, "
    "detected_at, reported_at, confidential, personal_data_breach, public_ips, domains, "
    "alert_ids. Defined in docs/operators/upstream.md of the Canh Gac project."
)
SEVERITY = {
    alert_pb2.SEVERITY_INFORMATIONAL: "informational",
    alert_pb2.SEVERITY_LOW: "low",
    alert_pb2.SEVERITY_MEDIUM: "medium",
    alert_pb2.SEVERITY_HIGH: "high",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}


def stix_id(kind: str, key: str) -> str:
    """A deterministic id for an SDO/SRO: uuid5 of (kind, key), stamped as version 4."""
    digest = uuid.uuid5(NAMESPACE, f"{kind}:{key}")
    return f"{kind}--{uuid.UUID(bytes=digest.bytes, version=4)}"


def _time(ns: int) -> dt.datetime:
    # STIX timestamps here carry milliseconds; finer digits would differ between tools.
    return dt.datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=dt.UTC)


def province_identity(name: str, sector: str) -> stix2.v21.Identity:
    return stix2.v21.Identity(
        id=stix_id("identity", name),
        name=name,
        identity_class="organization",
        sectors=[sector],
        created=FIXED_TIME,
        modified=FIXED_TIME,
    )


def extension_definition(identity: stix2.v21.Identity) -> stix2.v21.ExtensionDefinition:
    return stix2.v21.ExtensionDefinition(
        id=stix_id("extension-definition", EXTENSION_NAME + EXTENSION_VERSION),
        created_by_ref=identity.id,
        name=EXTENSION_NAME,
        description="Canh Gac fields of alerts (on sightings) and incidents.",
        schema=EXTENSION_SCHEMA,
        version=EXTENSION_VERSION,
        extension_types=["property-extension"],
        created=FIXED_TIME,
        modified=FIXED_TIME,
    )


def _is_ip_key(key: str) -> bool:
    return key == "ip" or key.endswith(".ip")


def _domain(value: str) -> str:
    """The host name `value` is, normalised; "" when it is no host name (or an address)."""
    try:
        ipaddress.ip_address(value)
        return ""
    except ValueError:
        pass
    try:
        return _hostname(value)
    except ValueError:
        return ""


def _is_domain_key(key: str) -> bool:
    return key.endswith(".domain") or key in ("dns.question.name", "url.domain")


def observables(alert: alert_pb2.Alert) -> list[Any]:
    """The cyber observables in the alert's group, in a stable order."""
    out: list[Any] = []
    seen: set[str] = set()

    def add(obj: Any) -> None:
        if obj.id not in seen:
            seen.add(obj.id)
            out.append(obj)

    group = alert.group
    for key in sorted(group):
        value = group[key].strip()
        if _is_ip_key(key):
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                continue
            cls = stix2.v21.IPv4Address if ip.version == 4 else stix2.v21.IPv6Address
            add(cls(value=str(ip)))
        elif _is_domain_key(key) and _domain(value):
            add(stix2.v21.DomainName(value=_domain(value)))
    for key in ("file.path", "file.name"):
        if group.get(key):
            add(_file(group[key], group.get("file.hash.sha256", "")))
            break
    process = _process(alert)
    if process is not None:
        image = process.get("image_ref")
        if image is not None:
            add(_file(group.get("process.executable") or group["process.name"], ""))
        add(process)
    return out


_SHA256 = re.compile(r"^[0-9A-Fa-f]{64}$")


def _file(path: str, sha256: str) -> stix2.v21.File:
    name = posixpath.basename(path.replace("\\", "/")) or path
    if _SHA256.match(sha256):
        return stix2.v21.File(name=name, hashes={"SHA-256": sha256.lower()})
    return stix2.v21.File(name=name)


def _process(alert: alert_pb2.Alert) -> stix2.v21.Process | None:
    group = alert.group
    props: dict[str, Any] = {}
    pid = group.get("process.pid", "")
    if pid.isdigit():
        props["pid"] = int(pid)
    if group.get("process.command_line"):
        props["command_line"] = group["process.command_line"]
    if group.get("process.working_directory"):
        props["cwd"] = group["process.working_directory"]
    executable = group.get("process.executable") or group.get("process.name")
    if executable:
        props["image_ref"] = _file(executable, "").id
    if not props:
        return None
    # A process has no identifying properties, so STIX wants a v4 id; ours is derived.
    return stix2.v21.Process(id=stix_id("process", alert.id), **props)


def _pattern(objects: list[Any]) -> str | None:
    terms = []
    for obj in objects:
        if obj.type in ("ipv4-addr", "ipv6-addr", "domain-name"):
            terms.append(f"[{obj.type}:value = '{_quote(obj.value)}']")
        elif obj.type == "file" and "hashes" in obj:
            terms.append(f"[file:hashes.'SHA-256' = '{obj.hashes['SHA-256']}']")
        elif obj.type == "file":
            terms.append(f"[file:name = '{_quote(obj.name)}']")
    return " AND ".join(terms) or None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def alert_objects(
    alert: alert_pb2.Alert, identity: stix2.v21.Identity, extension_id: str
) -> list[Any]:
    """The objects of one (minimised) alert; the sighting comes first."""
    created = _time(alert.created_ns)
    first = _time(alert.first_seen_ns or alert.created_ns)
    last = max(first, _time(alert.last_seen_ns or alert.created_ns))
    count = max(alert.event_count, 1)
    scos = observables(alert)
    pattern = _pattern(scos)
    refs = [
        {"source_name": "mitre-attack", "external_id": t} for t in sorted(alert.mitre_techniques)
    ]
    indicator = stix2.v21.Indicator(
        id=stix_id("indicator", f"{alert.rule_id}\n{pattern or ''}"),
        created_by_ref=identity.id,
        name=alert.rule_title or alert.rule_id,
        description=f"Canh Gac detection rule {alert.rule_id}",
        indicator_types=["malicious-activity"],
        pattern=pattern or alert.rule_id,
        pattern_type="stix" if pattern else "canhgac-rule",
        valid_from=FIXED_TIME,
        created=FIXED_TIME,
        modified=FIXED_TIME,
        **({"external_references": refs} if refs else {}),
    )
    objects: list[Any] = [indicator]
    observed_refs = []
    if scos:
        observed = stix2.v21.ObservedData(
            id=stix_id("observed-data", alert.id),
            created_by_ref=identity.id,
            first_observed=first,
            last_observed=last,
            number_observed=count,
            object_refs=[o.id for o in scos],
            created=created,
            modified=created,
        )
        objects += [*scos, observed]
        observed_refs = [observed.id]
    sighting = stix2.v21.Sighting(
        id=stix_id("sighting", alert.id),
        created_by_ref=identity.id,
        sighting_of_ref=indicator.id,
        where_sighted_refs=[identity.id],
        first_seen=first,
        last_seen=last,
        count=count,
        description=alert.summary or alert.rule_title or alert.rule_id,
        created=created,
        modified=created,
        extensions={extension_id: _alert_extension(alert)},
        **({"observed_data_refs": observed_refs} if observed_refs else {}),
    )
    if alert.incident_id:
        incident_id = stix_id("incident", alert.incident_id)
        for target in [indicator.id, *observed_refs]:
            objects.append(
                stix2.v21.Relationship(
                    id=stix_id("relationship", f"{alert.id}\n{target}"),
                    created_by_ref=identity.id,
                    relationship_type="related-to",
                    source_ref=incident_id,
                    target_ref=target,
                    created=created,
                    modified=created,
                )
            )
    return [sighting, *objects]


def _alert_extension(alert: alert_pb2.Alert) -> dict[str, Any]:
    ext: dict[str, Any] = {
        "extension_type": "property-extension",
        "alert_id": alert.id,
        "rule_id": alert.rule_id,
        "severity": SEVERITY.get(alert.severity, "unspecified"),
        "category": alert.category,
        "system_id": alert.system_id,
        "system_level": alert.system_level,
        "origin": alert.origin,
        "incident_id": alert.incident_id,
        "mitre_techniques": sorted(alert.mitre_techniques),
    }
    # Empty strings and lists are not allowed in STIX; absent means unknown.
    return {k: v for k, v in ext.items() if v != "" and v != []}


def incident_modified(incident: Incident) -> dt.datetime:
    """The version of an incident: its latest report, or its detection."""
    times = [incident.detected_at, *(r.sent_at for r in incident.reports)]
    if incident.reported_at is not None:
        times.append(incident.reported_at)
    return max(t.astimezone(dt.UTC) for t in times)


def incident_objects(
    incident: Incident, identity: stix2.v21.Identity, extension_id: str
) -> list[Any]:
    """The STIX incident of one (minimised) incident."""
    created = incident.detected_at.astimezone(dt.UTC)
    ext: dict[str, Any] = {
        "extension_type": "property-extension",
        "incident_id": incident.id,
        "category": incident.category,
        "severity": incident.severity,
        "system_level": incident.system_level,
        "status": incident.status,
        "detected_at": stix2.utils.format_datetime(created),
        "reported_at": (
            stix2.utils.format_datetime(incident.reported_at.astimezone(dt.UTC))
            if incident.reported_at
            else None
        ),
        "confidential": incident.confidential,
        "personal_data_breach": incident.personal_data_breach,
        "public_ips": list(incident.public_ips),
        "domains": list(incident.domains),
        "alert_ids": list(incident.alert_ids),
    }
    ext = {k: v for k, v in ext.items() if v not in ("", None, [])}
    props: dict[str, Any] = {}
    if incident.description:
        props["description"] = incident.description
    return [
        stix2.v21.Incident(
            id=stix_id("incident", incident.id),
            created_by_ref=identity.id,
            name=incident.title or f"Incident {incident.id}",
            created=created,
            modified=max(created, incident_modified(incident)),
            extensions={extension_id: ext},
            **props,
        )
    ]


def bundle_for(objects: list[Any], key: str) -> stix2.v21.Bundle:
    """A bundle of `objects` (deduplicated by id, order kept) with a deterministic id."""
    unique: dict[str, Any] = {}
    for obj in objects:
        unique.setdefault(obj.id, obj)
    return stix2.v21.Bundle(objects=list(unique.values()), id=stix_id("bundle", key))
