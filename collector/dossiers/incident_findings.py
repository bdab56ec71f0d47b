"""Findings for incidents' legal clocks: a report duty missed, or due soon and not yet met.

Every incident on record is judged under its system's regime (the deployment's when the
system is not registered); its clocks come from `Incident.deadlines` (incidents.py), whose
legal basis is the regime's deadline entry (source and confidence as the data states them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping

from collector.dossiers.findings import Finding, LegalBasis
from collector.dossiers.incidents import Incident
from collector.dossiers.regime import Regime
from collector.storage.base import Store

# A clock due within this long is reported as approaching.
APPROACHING = dt.timedelta(hours=6)

CODES: Mapping[str, str] = {
    "incident_deadline_missed": "an incident report duty whose deadline passed unmet",
    "incident_deadline_approaching": "an incident report duty due within 6 hours, not yet met",
}


def incident_findings(
    store: Store,
    regime: Regime,
    now: dt.datetime,
    *,
    regimes: Mapping[str, Regime] | None = None,
    system_id: str | None = None,
) -> list[Finding]:
    findings: list[Finding] = []
    for incident in store.list_incidents(system_id=system_id):
        findings.extend(_clocks(incident, _regime_of(store, incident, regime, regimes), now))
    return findings


def _regime_of(
    store: Store, incident: Incident, default: Regime, regimes: Mapping[str, Regime] | None
) -> Regime:
    system = store.get_system(incident.system_id) if incident.system_id else None
    if system is not None and regimes is not None and system.regime in regimes:
        return regimes[system.regime]
    return default


def _clocks(incident: Incident, regime: Regime, now: dt.datetime) -> Iterator[Finding]:
    for clock in incident.deadlines(regime, now=now):
        d = clock.deadline
        basis = LegalBasis(d.source, d.confidence, d.note)
        data = {
            "incident_id": incident.id,
            "duty": d.kind,
            "due": clock.due.isoformat(),
            "recipient": d.recipient,
        }
        due = clock.due.strftime("%d/%m/%Y %H:%M")
        if clock.state == "missed":
            yield Finding(
                "incident_deadline_missed",
                "high",
                f"Sự cố {incident.id}: quá hạn {d.kind} (hạn {due}, gửi {d.recipient}).",
                f"Incident {incident.id}: {d.kind} overdue (due {due}, to {d.recipient}).",
                (basis,),
                regime.id,
                system_id=incident.system_id or None,
                data=data,
            )
        elif clock.state == "due" and clock.due - now <= APPROACHING:
            yield Finding(
                "incident_deadline_approaching",
                "warning",
                f"Sự cố {incident.id}: sắp đến hạn {d.kind} ({due}, gửi {d.recipient}).",
                f"Incident {incident.id}: {d.kind} due soon ({due}, to {d.recipient}).",
                (basis,),
                regime.id,
                system_id=incident.system_id or None,
                data=data,
            )
