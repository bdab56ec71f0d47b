"""Export one system's evidence over a period into a signed bundle.

`export_bundle` is what the CLI and the console's assessor page (collector/web/console/
evidence.py, with `actor` the user's name) call. It reads
through the Store only, streams the events (statistics and, when asked, the raw events) and
the alerts to files in a work directory beside the output, then writes the tar and puts it in
place without overwriting anything unless told to (bundle.py).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.json_format import MessageToDict

from canhgac.v1 import events_pb2
from collector.audit.model import AuditEntry
from collector.config import CollectorConfig
from collector.dossiers.findings_worker import all_findings
from collector.dossiers.regime import Regime, load_regimes
from collector.dossiers.retention import regime_of
from collector.evidence import sections
from collector.evidence.bundle import BundleWriter
from collector.evidence.errors import EvidenceError
from collector.evidence.period import check_period
from collector.evidence.signing import fingerprint
from collector.evidence.stats import DEFAULT_GAP_S, collect_stats, find_gaps
from collector.evidence.store import PeriodEventRow
from collector.evidence.summary import render_summary
from collector.storage.base import Store

RAW_EVENTS = "events.jsonl.gz"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    files: tuple[str, ...]
    events: int


def export_bundle(
    store: Store,
    system_id: str,
    start: dt.datetime,
    end: dt.datetime,
    out: Path,
    *,
    config: CollectorConfig,
    key: Ed25519PrivateKey,
    regimes: Mapping[str, Regime] | None = None,
    raw_events: bool = False,
    force: bool = False,
    actor: str = "cli",
    gap_threshold_s: int = DEFAULT_GAP_S,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ExportResult:
    """Write the bundle of `system_id` over [start, end) to `out`; EvidenceError for an
    unknown system, a bad period or an output that exists (without `force`)."""
    created = now()
    period = check_period(start, end, created)
    system = store.get_system(system_id)
    if system is None:
        raise EvidenceError("unknown information system", location=f"--system {system_id}")
    if out.exists() and not force:
        raise EvidenceError("exists; pass --force to replace it", location=str(out))
    if not out.parent.is_dir():
        raise EvidenceError("no such directory", location=str(out.parent))
    registry = regimes if regimes is not None else load_regimes(config.dossiers.regime_dir)
    deployment = _deployment_regime(registry, config)
    regime = regime_of(system, deployment, registry)
    agents = {
        a.agent_id: a.hostname
        for a in store.list_agents()
        if store.system_of_agent(a.agent_id) == system_id
    }

    with tempfile.TemporaryDirectory(prefix=".evidence-", dir=out.parent) as work:
        bundle = BundleWriter(Path(work))
        bundle.add_json("system.json", sections.system_section(store, system, regime))
        findings = all_findings(
            store,
            deployment,
            config,
            min(period.end, created),
            regimes=registry,
            system_id=system_id,
        )
        bundle.add_json("findings.json", [f.to_json() for f in findings])
        alerts = 0
        with bundle.open("alerts.jsonl") as fh:
            for row in sections.alerts_lines(store, system_id, period):
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
                alerts += 1
        incidents = sections.incidents_section(store, system_id, period)
        bundle.add_json("incidents.json", incidents)
        if raw_events:
            with (
                bundle.open(RAW_EVENTS) as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
            ):
                stats = collect_stats(
                    store, agents, period.start_ns, period.end_ns, on_event=_raw_writer(gz)
                )
        else:
            stats = collect_stats(store, agents, period.start_ns, period.end_ns)
        stats.gaps = find_gaps(store, agents, period.start_ns, period.end_ns, gap_threshold_s)
        bundle.add_json("event-statistics.json", stats.to_json(gap_threshold_s))
        bundle.add_json("retention.json", sections.retention_section(store, agents))
        rules = sections.rules_section(config)
        bundle.add_json("rules.json", rules)
        bundle.add_json("inventory.json", sections.inventory_section(store, agents, period.end_ns))
        bundle.add_json("config.json", sections.config_section(config))
        audit = sections.audit_section(store, period)
        bundle.add_json("audit.json", audit)
        facts = {
            "system_id": system.id,
            "system_name": system.name,
            "level": system.approved_level or system.proposed_level,
            "regime_id": regime.id,
            "regime_title": {"vi": regime.title.vi, "en": regime.title.en},
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "collector": config.name,
            "created": created.isoformat(),
            "events": stats.total,
            "agents": len(agents),
            "gaps": len(stats.gaps),
            "alerts": alerts,
            "incidents": len(incidents),
            "findings": len(findings),
            "finding_messages": {
                "vi": [f"[{f.severity}] {f.message_vi}" for f in findings],
                "en": [f"[{f.severity}] {f.message_en}" for f in findings],
            },
            "rule_files": len(rules["files"]),
            "goldens_ok": rules["golden_tests"]["ok"],
            "audit_records": len(audit["records"]),
        }
        listing = sorted([*bundle.files, "summary.en.html", "summary.vi.html"])
        for lang in ("vi", "en"):
            bundle.add_bytes(f"summary.{lang}.html", render_summary(lang, facts, listing))
        fields = {
            "system": {"id": system.id, "name": system.name},
            "period": period.to_json(),
            "created": created.isoformat(),
            "collector": config.name,
            "regime": sections.regime_section(regime),
            "signer_sha256": fingerprint(key),
        }
        digest = bundle.write(out, fields, key, mtime=int(created.timestamp()), force=force)
        files = tuple(sorted(bundle.files))

    _record_export(store, actor, system_id, period.to_json(), out, digest)
    return ExportResult(out, digest, files, stats.total)


def _deployment_regime(registry: Mapping[str, Regime], config: CollectorConfig) -> Regime:
    if config.dossiers.regime not in registry:
        raise EvidenceError(
            f"the configured regime {config.dossiers.regime!r} is not loaded",
            location=str(config.dossiers.regime_dir),
        )
    return registry[config.dossiers.regime]


def _raw_writer(gz: gzip.GzipFile) -> Callable[[PeriodEventRow, events_pb2.Event | None], None]:
    def write(row: PeriodEventRow, event: events_pb2.Event | None) -> None:
        line: dict[str, Any] = {"row_id": row.row_id, "agent_id": row.agent_id}
        if event is None:
            line["undecodable"] = row.data.hex()
        else:
            line["event"] = MessageToDict(event, preserving_proto_field_name=True)
        gz.write(json.dumps(line, ensure_ascii=False, sort_keys=True).encode() + b"\n")

    return write


def _record_export(
    store: Store, actor: str, system_id: str, period: dict[str, object], out: Path, digest: str
) -> None:
    """The "evidence.export" audit record: who exported what, and the bundle's hash."""
    entry = AuditEntry(
        actor=actor,
        action="evidence.export",
        target=system_id,
        detail={"system": system_id, "period": period, "bundle_sha256": digest, "file": out.name},
    )
    store.append_audit(entry, at_ns=time.time_ns())
