"""The evidence files other than the statistics: each function returns plain JSON data
(or yields it, for the alerts, which can be many)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError

from canhgac.v1 import events_pb2
from collector.audit.model import GENESIS, AuditRecord
from collector.config import CollectorConfig
from collector.detection.goldens import check_library
from collector.detection.ruleset import find_rule_files
from collector.dossiers.model import InformationSystem, dump
from collector.dossiers.regime import Regime
from collector.dossiers.retention import system_level
from collector.evidence.period import Period
from collector.evidence.redact import redact
from collector.storage.base import Store
from collector.triage.model import AlertQuery

PAGE = 500


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def system_section(store: Store, system: InformationSystem, regime: Regime) -> dict[str, Any]:
    """The system as registered, its dossier and assets, its level and the regime in force."""
    dossier = store.get_dossier(system.id)
    assets = store.get_assets(system.id)
    return {
        "system": dump(system),
        "level": system_level(system),
        "approved_level": system.approved_level,
        "proposed_level": system.proposed_level,
        "dossier": dump(dossier) if dossier is not None else None,
        "assets": dump(assets) if assets is not None else None,
        "regime": regime_section(regime),
    }


def regime_section(regime: Regime) -> dict[str, Any]:
    path = Path(regime.path)
    return {
        "id": regime.id,
        "title": {"vi": regime.title.vi, "en": regime.title.en},
        "file": path.name,
        "sha256": file_sha256(path) if path.is_file() else None,
        "in_force_from": _date(regime.spec.in_force_from.value),
        "in_force_until": _date(regime.spec.in_force_until.value),
    }


def alerts_lines(store: Store, system_id: str, period: Period) -> Iterator[dict[str, Any]]:
    """The system's alerts raised in the period, oldest first, each with its triage history."""
    after = 0
    while True:
        page = store.query_alerts(AlertQuery(system_id=system_id, after_row=after, limit=PAGE))
        for a in page:
            if a.alert.system_id != system_id:
                continue
            if not period.start_ns <= a.alert.created_ns < period.end_ns:
                continue
            row = MessageToDict(a.alert, preserving_proto_field_name=True)
            row["status"] = a.status
            history = store.triage_history(a.alert.id)
            row["triage_history"] = [dataclasses.asdict(h) for h in history]
            yield row
        if len(page) < PAGE:
            return
        after = max(a.row_id for a in page)


def incidents_section(store: Store, system_id: str, period: Period) -> list[dict[str, Any]]:
    incidents = store.list_incidents(
        system_id=system_id, detected_from=period.start, detected_before=period.end
    )
    return [
        {
            "incident": i.model_dump(mode="json"),
            "report_log": [dataclasses.asdict(e) for e in store.report_log(i.id)],
        }
        for i in incidents
    ]


def retention_section(store: Store, agents: dict[str, str]) -> list[dict[str, Any]]:
    """The oldest event the store still holds, per agent: what retention has kept."""
    rows = []
    for agent_id, hostname in sorted(agents.items()):
        oldest = store.oldest_event(agent_id)
        rows.append(
            {
                "agent_id": agent_id,
                "hostname": hostname,
                "oldest_event": dataclasses.asdict(oldest) if oldest is not None else None,
                "oldest_time": _iso(oldest.time_ns) if oldest is not None else None,
            }
        )
    return rows


def rules_section(config: CollectorConfig) -> dict[str, Any]:
    """Each rule file with its SHA-256, and the result of running every golden test."""
    paths = list(config.detection.rule_paths)
    files, missing = find_rule_files(paths)
    report = check_library(paths)
    return {
        "rule_paths": [str(p) for p in paths],
        "files": [{"path": str(f), "sha256": file_sha256(f)} for f in files],
        "missing": [str(e) for e in missing],
        "golden_tests": {
            "ok": report.ok,
            "cases": len(report.results),
            "failed": [str(r) for r in report.results if not r.ok],
            "problems": list(report.problems),
        },
    }


def inventory_section(store: Store, agents: dict[str, str], before_ns: int) -> list[Any]:
    """The latest inventory event of each agent at the end of the period (None when none)."""
    found = []
    for agent_id, hostname in sorted(agents.items()):
        latest = _latest_inventory(store, agent_id, before_ns)
        found.append({"agent_id": agent_id, "hostname": hostname, "inventory": latest})
    return found


def _latest_inventory(store: Store, agent_id: str, before_ns: int) -> dict[str, Any] | None:
    for _ in range(20):  # inventory comes among agent_status events: look back a little
        page = store.latest_agent_events(agent_id, "host", before_ns=before_ns, limit=PAGE)
        for _time, data in page:
            try:
                event = events_pb2.Event.FromString(data)
            except DecodeError:
                continue
            if event.action == "inventory" and event.HasField("inventory"):
                return MessageToDict(event, preserving_proto_field_name=True)
        if len(page) < PAGE:
            return None
        before_ns = page[-1][0]
    return None


def config_section(config: CollectorConfig) -> Any:
    return redact(config)


def audit_section(store: Store, period: Period) -> dict[str, Any]:
    """The audit records of the period with the chain proof: the hash of the record just
    before them, so `verify_chain(records, prev_hash=..., first_seq=...)` runs offline.

    Record times need not grow with seq (a CLI on another clock appends too), so the excerpt
    is every record from the first to the last one dated in the period, those between
    included: a chain proof needs an unbroken run of seqs.
    """
    last = store.last_audit_record()
    head = {"seq": last.seq, "hash": last.hash} if last is not None else None
    start_ns, end_ns = period.start_ns, period.end_ns
    first = store.audit_records(from_ns=start_ns, before_ns=end_ns, limit=1)
    if not first:
        seq = last.seq if last is not None else 0
        return _audit(seq + 1, last.hash if last is not None else GENESIS, [], head)
    end_seq = first[0].seq
    while page := store.audit_records(
        from_ns=start_ns, before_ns=end_ns, after_seq=end_seq, limit=PAGE
    ):
        end_seq = page[-1].seq
    # The proof is the stored hash of the record before, not the first record's own claim.
    start_seq = first[0].seq
    before = store.audit_records(after_seq=start_seq - 2, limit=1) if start_seq > 1 else []
    records: list[dict[str, Any]] = []
    after = start_seq - 1
    while after < end_seq and (page := store.audit_records(after_seq=after, limit=PAGE)):
        records.extend(_record(r) for r in page if r.seq <= end_seq)
        after = page[-1].seq
    return _audit(start_seq, before[0].hash if before else GENESIS, records, head)


def _audit(
    first_seq: int, prev_hash: str, records: list[dict[str, Any]], head: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "first_seq": first_seq,
        "prev_hash": prev_hash,
        "records": records,
        "chain_head_at_export": head,
    }


def _record(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at_ns": r.at_ns,
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "detail": dict(r.detail),
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def _date(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat()
