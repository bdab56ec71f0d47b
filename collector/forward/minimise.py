"""Data minimisation: what an alert or incident may carry when it leaves the province.

The national report form asks for public addresses only (TT 20/2017 Mẫu 03), so by default
every non-global IPv4/IPv6 address (private, loopback, link-local, CGNAT, ULA, documentation,
unspecified, and v6 forms embedding such a v4 address) is removed from every string of an
external payload: a group value that is only an address is dropped, an address inside text
becomes "[internal]". Confidential incidents follow their own policy, operators can blank named
fields, and internal host names can be hidden too.

The scrubber errs on the side of removing: overlapping dotted quads are all checked, leading
zeros are read as decimal, and an IPv6 candidate is any run of hex digits, ':' and '.' with two
colons. An address glued to letters or digits ("abc10.0.0.1" is a different token) is not an
address and is kept. Numeric forms (0x0a000001, 167772161) are not recognised.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Literal, cast

from pydantic import Field, field_validator

from canhgac.config import StrictModel
from canhgac.v1 import alert_pb2
from collector.dossiers.incidents import Incident

INTERNAL = "[internal]"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Alert fields an operator may blank (the id is the idempotency key and stays).
_ALERT_FIELDS = frozenset(f.name for f in alert_pb2.Alert.DESCRIPTOR.fields) - {"id"}
# Incident fields a summary keeps; everything else returns to its default.
_SUMMARY_FIELDS = frozenset(
    {
        "id",
        "category",
        "severity",
        "system_level",
        "detected_at",
        "reported_at",
        "status",
        "personal_data_breach",
        "confidential",
        "alert_ids",
    }
)
_INCIDENT_REQUIRED = frozenset({"id", "detected_at"})
_INTERNAL_SUFFIXES = (
    ".local",
    ".lan",
    ".internal",
    ".intranet",
    ".corp",
    ".home",
    ".localdomain",
    ".home.arpa",
    ".private",
)
# Group keys whose value names a host.
_HOST_KEY = re.compile(r"(^|[._])(host|hostname|domain|computer|workstation)(\.name)?$")

# Lookahead so that overlapping quads ("1.10.0.0.1") are each seen.
_IPV4 = re.compile(r"(?<!\d)(?=(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\d))")
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]+(?:%[0-9A-Za-z_.-]+)?")
_MAX_V6_RUN = 64


class MinimisePolicy(StrictModel):
    """What a destination may receive; the default keeps nothing internal.

    `redact_fields` names alert fields (`summary`, `host`, `group.user.name` for one group
    key) or incident fields (`description`, `reporter.phone`); they are blanked. Names are
    checked when the config is loaded.
    """

    keep_private_addresses: bool = False
    confidential_incidents: Literal["withhold", "summary_only", "full"] = "summary_only"
    redact_fields: list[str] = Field(default_factory=list)
    redact_internal_hostnames: bool = False

    @field_validator("redact_fields")
    @classmethod
    def _known_fields(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _is_alert_path(name) and not _is_incident_path(name):
                raise ValueError(f"{name!r} is not a redactable alert or incident field")
        return names


def _is_alert_path(name: str) -> bool:
    if name.startswith("group.") and len(name) > len("group."):
        return True
    return name in _ALERT_FIELDS


def _is_incident_path(name: str) -> bool:
    head, _, rest = name.partition(".")
    if head in _INCIDENT_REQUIRED or head not in Incident.model_fields:
        return False
    if not rest:
        return True
    annotation = Incident.model_fields[head].annotation
    fields = getattr(annotation, "model_fields", None)
    return isinstance(fields, dict) and rest in fields


def is_internal_address(ip: IpAddress) -> bool:
    """True for an address that must not leave the province (also v6 carrying a private v4)."""
    if not ip.is_global:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address | None] = [ip.ipv4_mapped, ip.sixtofour]
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return any(v4 is not None and not v4.is_global for v4 in embedded)
    return False


def _v6_at(run: str) -> IpAddress | None:
    """The address a hex/colon run is, or starts with; None when it is no address."""
    candidates = [run, run.strip(":."), run.rstrip(":.")]
    for text in candidates:
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            continue
    if len(run) <= _MAX_V6_RUN:
        for end in range(len(run) - 1, 1, -1):
            try:
                return ipaddress.ip_address(run[:end])
            except ValueError:
                continue
    return None


def scrub_addresses(text: str) -> str:
    """`text` with every internal address replaced by "[internal]"."""
    if not text:
        return text
    spans: list[tuple[int, int]] = []
    for m in _IPV6_RUN.finditer(text):
        run = m.group(0)
        if run.count(":") < 2:
            continue
        start = m.start()
        before = text[start - 1] if start else ""
        if before.isalnum() or before == "_":
            if not (run.startswith(":") and run[1:2] != ":"):
                continue  # part of a longer word, e.g. "std::map"
            # "addr:fd00::1": a single colon after a word separates it from the address.
            start, run = start + 1, run[1:]
        ip = _v6_at(run)
        if ip is not None and is_internal_address(ip):
            spans.append((start, m.end()))
    for m in _IPV4.finditer(text):
        octets = [int(g) for g in m.groups()]
        if max(octets) > 255:
            continue
        ip4 = ipaddress.IPv4Address(".".join(str(o) for o in octets))
        if is_internal_address(ip4):
            spans.append((m.start(), m.start() + len(".".join(m.groups()))))
    if not spans:
        return text
    return _replace_spans(text, spans)


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(INTERNAL)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def only_internal_address(value: str) -> bool:
    """True when `value` is, as a whole, an internal address (a group value to drop)."""
    try:
        return is_internal_address(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        return scrub_addresses(value).strip() == INTERNAL


def is_internal_hostname(name: str) -> bool:
    """A name that only resolves inside the province: one label or a private suffix."""
    name = name.strip().lower().rstrip(".")
    if not name or only_internal_address(name):
        return bool(name)
    if "." not in name:
        return True
    return name.endswith(_INTERNAL_SUFFIXES)


def minimise_alert(alert: alert_pb2.Alert, policy: MinimisePolicy) -> alert_pb2.Alert:
    """A redacted copy of `alert` following `policy`; the input is not changed."""
    out = alert_pb2.Alert()
    out.CopyFrom(alert)
    for name in policy.redact_fields:
        if name.startswith("group."):
            out.group.pop(name[len("group.") :], None)
        elif name in _ALERT_FIELDS:
            out.ClearField(cast(Any, name))  # checked against the descriptor above
    hosts: set[str] = set()
    if policy.redact_internal_hostnames:
        if out.host and is_internal_hostname(out.host):
            hosts.add(out.host)
            out.host = INTERNAL
        for key in list(out.group):
            value = out.group[key]
            if _HOST_KEY.search(key) and is_internal_hostname(value):
                hosts.add(value)
                del out.group[key]
    if not policy.keep_private_addresses:
        for key in list(out.group):
            if only_internal_address(out.group[key]):
                del out.group[key]
    text = _text_scrubber(policy, hosts)
    _map_strings(out, text)
    return out


def _text_scrubber(policy: MinimisePolicy, hosts: set[str]) -> Callable[[str], str]:
    patterns = [
        re.compile(rf"(?<![\w.-]){re.escape(h)}(?![\w-])", re.IGNORECASE)
        for h in sorted(hosts, key=len, reverse=True)
        if h != INTERNAL
    ]

    def scrub(value: str) -> str:
        if not policy.keep_private_addresses:
            value = scrub_addresses(value)
        for pattern in patterns:
            value = pattern.sub(INTERNAL, value)
        return value

    return scrub


def _map_strings(alert: alert_pb2.Alert, scrub: Callable[[str], str]) -> None:
    for field in alert.DESCRIPTOR.fields:
        if field.name == "id":
            continue
        if field.message_type is not None:  # the group map
            group = dict(alert.group)
            alert.group.clear()
            for key, value in group.items():
                alert.group[scrub(key)] = scrub(value)
        elif field.type == field.TYPE_STRING:
            if field.is_repeated:
                values = [scrub(v) for v in getattr(alert, field.name)]
                del getattr(alert, field.name)[:]
                getattr(alert, field.name).extend(values)
            else:
                setattr(alert, field.name, scrub(getattr(alert, field.name)))


def minimise_incident(incident: Incident, policy: MinimisePolicy) -> Incident | None:
    """A redacted copy of `incident`, or None when a confidential incident is withheld."""
    data = incident.model_dump(mode="json")
    if incident.confidential:
        if policy.confidential_incidents == "withhold":
            return None
        if policy.confidential_incidents == "summary_only":
            data = {k: v for k, v in data.items() if k in _SUMMARY_FIELDS}
    for name in policy.redact_fields:
        if _is_incident_path(name):
            _pop_path(data, name)
    hosts: set[str] = set()
    if policy.redact_internal_hostnames and "domains" in data:
        hosts = {d for d in data["domains"] if is_internal_hostname(d)}
        data["domains"] = [d for d in data["domains"] if d not in hosts]
    scrub = _text_scrubber(policy, hosts)
    data = _walk(data, scrub, path="")
    return Incident.model_validate(data)


def _pop_path(data: dict[str, Any], path: str) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        data.pop(head, None)
    elif isinstance(data.get(head), dict):
        _pop_path(data[head], rest)


# Values with a fixed vocabulary or format; scrubbing could only corrupt them.
_UNTOUCHED = frozenset(
    {"id", "detected_at", "reported_at", "sent_at", "initial_report_date", "alert_ids"}
)


def _walk(value: Any, scrub: Callable[[str], str], *, path: str) -> Any:
    if isinstance(value, str):
        if path in _UNTOUCHED:
            return value
        scrubbed = scrub(value)
        # An e-mail address with an internal literal (user@[10.0.0.1]) cannot stay valid.
        return "" if path == "email" and scrubbed != value else scrubbed
    if isinstance(value, dict):
        return {k: _walk(v, scrub, path=k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, scrub, path=path) for v in value]
    return value
