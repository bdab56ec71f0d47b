"""Data minimisation: no internal address reaches an external payload unless configured."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from canhgac.v1 import alert_pb2
from collector.dossiers.incidents import Incident, Reporter
from collector.forward.minimise import (
    INTERNAL,
    MinimisePolicy,
    is_internal_address,
    minimise_alert,
    minimise_incident,
    scrub_addresses,
)

DETECTED = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
DEFAULT = MinimisePolicy()

INTERNAL_NETS = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "192.0.2.0/24",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
    "2001:db8::/32",
]


@st.composite
def internal_ips(draw: st.DrawFn) -> str:
    net = ipaddress.ip_network(draw(st.sampled_from(INTERNAL_NETS)))
    offset = draw(st.integers(min_value=0, max_value=net.num_addresses - 1))
    ip = net[offset]
    form = draw(st.sampled_from(["plain", "exploded", "mapped", "upper"]))
    if form == "mapped" and isinstance(ip, ipaddress.IPv4Address):
        return f"::ffff:{ip}"
    if form == "exploded":
        return ip.exploded
    if form == "upper":
        return str(ip).upper()
    return str(ip)


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz XYZ", max_size=12)
separators = st.sampled_from([" ", ", ", "=", "(", ")", "[", "]", '"', "/", "\t", "\n", " -> "])


@st.composite
def texts_with(draw: st.DrawFn) -> tuple[str, list[str]]:
    ips = draw(st.lists(internal_ips(), min_size=1, max_size=4))
    parts = [draw(words)]
    for ip in ips:
        parts += [draw(separators), ip, draw(separators), draw(words)]
    return "".join(parts), ips


def _all_strings(alert: alert_pb2.Alert) -> list[str]:
    out = [alert.rule_id, alert.rule_title, alert.host, alert.summary, alert.agent_id]
    out += [alert.system_id, alert.category, alert.origin, alert.incident_id]
    out += list(alert.group.keys()) + list(alert.group.values())
    out += list(alert.event_ids) + list(alert.mitre_techniques)
    return out


def _leaks(strings: list[str], ips: list[str]) -> list[str]:
    """The generated addresses still present, in any textual form."""
    found = []
    for ip in ips:
        parsed = ipaddress.ip_address(ip)
        forms = {ip.lower(), str(parsed), parsed.exploded}
        for s in strings:
            if any(form in s.lower() for form in forms):
                found.append(f"{ip} in {s!r}")
    return found


@settings(max_examples=300, deadline=None)
@given(texts_with())
def test_no_internal_address_survives_in_text(case: tuple[str, list[str]]) -> None:
    text, ips = case
    assert _leaks([scrub_addresses(text)], ips) == []


@settings(max_examples=200, deadline=None)
@given(texts_with(), internal_ips(), texts_with())
def test_no_internal_address_survives_in_any_alert_string(
    summary: tuple[str, list[str]], source: str, title: tuple[str, list[str]]
) -> None:
    alert = alert_pb2.Alert(
        id="a-1",
        rule_title=title[0],
        summary=summary[0],
        host=source,
        group={"source.ip": source, "note": summary[0], source: "key is an address"},
        event_ids=[summary[0]],
    )
    out = minimise_alert(alert, DEFAULT)
    assert _leaks(_all_strings(out), summary[1] + title[1] + [source]) == []
    # The input is left as it was.
    assert alert.group["source.ip"] == source


@settings(max_examples=100, deadline=None)
@given(texts_with())
def test_no_internal_address_survives_in_an_incident(case: tuple[str, list[str]]) -> None:
    text, ips = case
    incident = Incident(
        id="INC-1", detected_at=DETECTED, description=text, title=text, purpose=text
    )
    out = minimise_incident(incident, DEFAULT)
    assert out is not None
    assert _leaks([out.description, out.title, out.purpose], ips) == []


@settings(max_examples=100, deadline=None)
@given(texts_with())
def test_addresses_kept_when_configured(case: tuple[str, list[str]]) -> None:
    text, _ = case
    alert = alert_pb2.Alert(id="a-1", summary=text)
    out = minimise_alert(alert, MinimisePolicy(keep_private_addresses=True))
    assert out.summary == text


def test_public_addresses_and_look_alikes_are_kept() -> None:
    text = "from 8.8.8.8 and 2606:4700::1111 at 12:30:45, mac aa:bb:cc:dd:ee:ff, std::map v1.2.3"
    assert scrub_addresses(text) == text


def test_internal_addresses_in_context_are_replaced() -> None:
    assert scrub_addresses("ssh from 10.0.0.5:22 to [fe80::1%eth0]") == (
        f"ssh from {INTERNAL}:22 to [{INTERNAL}]"
    )
    assert scrub_addresses("net 192.168.1.0/24.") == f"net {INTERNAL}/24."
    # Leading zeros are read as decimal rather than let through.
    assert scrub_addresses("host 010.000.000.001") == f"host {INTERNAL}"
    # Overlapping quads: the private one is found even inside a longer dotted run.
    assert INTERNAL in scrub_addresses("oid 1.10.0.0.1")


def test_v6_forms_carrying_a_private_v4_are_internal() -> None:
    assert is_internal_address(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert is_internal_address(ipaddress.ip_address("64:ff9b::a00:1"))
    assert is_internal_address(ipaddress.ip_address("2002:c0a8:101::1"))  # 6to4 of 192.168.1.1
    assert not is_internal_address(ipaddress.ip_address("64:ff9b::808:808"))


def test_alert_group_values_that_are_addresses_are_dropped() -> None:
    alert = alert_pb2.Alert(
        id="a-1",
        host="web01",
        summary="brute force from 10.1.2.3 on web01",
        group={"source.ip": "10.1.2.3", "destination.ip": "8.8.4.4", "user.name": "root"},
    )
    out = minimise_alert(alert, DEFAULT)
    assert dict(out.group) == {"destination.ip": "8.8.4.4", "user.name": "root"}
    assert out.summary == f"brute force from {INTERNAL} on web01"
    assert out.host == "web01"


def test_redact_fields() -> None:
    alert = alert_pb2.Alert(
        id="a-1", summary="root logged in", group={"user.name": "root", "source.ip": "1.1.1.1"}
    )
    policy = MinimisePolicy(redact_fields=["group.user.name", "summary"])
    out = minimise_alert(alert, policy)
    assert dict(out.group) == {"source.ip": "1.1.1.1"}
    assert out.summary == ""
    assert out.id == "a-1"


def test_redact_fields_on_incidents() -> None:
    incident = Incident(
        id="INC-1",
        detected_at=DETECTED,
        description="details",
        reporter=Reporter(name="Sở TT&TT", phone="0123"),
    )
    policy = MinimisePolicy(redact_fields=["description", "reporter.phone"])
    out = minimise_incident(incident, policy)
    assert out is not None
    assert out.description == ""
    assert out.reporter == Reporter(name="Sở TT&TT")


@pytest.mark.parametrize("name", ["id", "detected_at", "nonsense", "reporter.nonsense", "group."])
def test_unknown_or_protected_redact_fields_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="not a redactable"):
        MinimisePolicy(redact_fields=[name])


def test_internal_hostnames_redacted_when_configured() -> None:
    alert = alert_pb2.Alert(
        id="a-1",
        host="web01",
        summary="web01 talked to db.corp and to example.com",
        group={"destination.domain": "db.corp", "url.domain": "example.com"},
    )
    kept = minimise_alert(alert, DEFAULT)
    assert kept.host == "web01"
    assert dict(kept.group) == dict(alert.group)
    out = minimise_alert(alert, MinimisePolicy(redact_internal_hostnames=True))
    assert out.host == INTERNAL
    assert dict(out.group) == {"url.domain": "example.com"}
    assert out.summary == f"{INTERNAL} talked to {INTERNAL} and to example.com"


def test_internal_domains_dropped_from_incidents() -> None:
    incident = Incident(
        id="INC-1", detected_at=DETECTED, domains=("intranet.local", "portal.gov.vn")
    )
    out = minimise_incident(incident, MinimisePolicy(redact_internal_hostnames=True))
    assert out is not None
    assert out.domains == ("portal.gov.vn",)


def _confidential() -> Incident:
    return Incident(
        id="INC-9",
        detected_at=DETECTED,
        title="Ransomware on the finance system",
        description="the payroll database was encrypted",
        category="malware",
        severity="serious",
        system_level=3,
        attachments=("system_logs",),
        public_ips=("8.8.8.8",),
        confidential=True,
        alert_ids=("a-1",),
    )


def test_confidential_withhold() -> None:
    assert (
        minimise_incident(_confidential(), MinimisePolicy(confidential_incidents="withhold"))
        is None
    )


def test_confidential_summary_only() -> None:
    out = minimise_incident(_confidential(), DEFAULT)
    assert out == Incident(
        id="INC-9",
        detected_at=DETECTED,
        category="malware",
        severity="serious",
        system_level=3,
        confidential=True,
        alert_ids=("a-1",),
    )


def test_confidential_full_and_non_confidential_unaffected() -> None:
    full = minimise_incident(_confidential(), MinimisePolicy(confidential_incidents="full"))
    assert full == _confidential()
    open_incident = _confidential().model_copy(update={"confidential": False})
    assert minimise_incident(open_incident, MinimisePolicy(confidential_incidents="withhold")) == (
        open_incident
    )
