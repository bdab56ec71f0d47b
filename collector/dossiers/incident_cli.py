"""`canhgac-collector incidents ...` and `reports annual`: incident records and report documents.

Like `systems ...` these act only through the store. `show` prints an incident as YAML with its
legal clocks; `update` takes that YAML back (the alert ids stay the store's). `report` renders
the initial (Mẫu 03) or closure (Mẫu 04) report, lists on standard error the mandatory fields
still missing, and appends the document's SHA-256 to the incident's report log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from canhgac.config import parse_model
from canhgac.errors import ConfigError
from collector.audit.cli import record_cli
from collector.dossiers.clock import VN_TZ
from collector.dossiers.incidents import Incident, IncidentError, ReportLogEntry
from collector.dossiers.model import Dossier, dump
from collector.dossiers.regime import Regime, load_regimes
from collector.dossiers.reports import Report, build_annual, build_closure, build_initial, render
from collector.enroll.cli import open_store
from collector.storage.base import Store

Clock = Callable[[], int]
WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _regime(ns: argparse.Namespace, regime_id: str | None = None) -> Regime:
    from collector import config as cfgmod

    config = cfgmod.load(ns.config)
    regimes = load_regimes(ns.regimes or config.dossiers.regime_dir)
    return regimes.select(regime_id or config.dossiers.regime)


def _known(store: Store, incident_id: str) -> Incident:
    incident = store.get_incident(incident_id)
    if incident is None:
        raise IncidentError("no such incident", location=incident_id)
    return incident


def _now(clock: Clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock() / 1e9, VN_TZ)


def cmd_list(ns: argparse.Namespace) -> int:
    store = open_store(ns)
    try:
        incidents = store.list_incidents(system_id=ns.system)
    finally:
        store.close()
    for i in incidents:
        row = {
            "id": i.id,
            "system_id": i.system_id,
            "detected_at": i.detected_at.astimezone(VN_TZ).isoformat(),
            "category": i.category,
            "severity": i.severity,
            "status": i.status,
            "alerts": len(i.alert_ids),
        }
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print("  ".join(f"{v}" for v in row.values()))
    if not incidents and not ns.json:
        print("no incidents")
    return 0


def cmd_show(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    try:
        incident = _known(store, ns.incident_id)
        system = store.get_system(incident.system_id) if incident.system_id else None
        log = store.report_log(ns.incident_id)
    finally:
        store.close()
    regime = _regime(ns, system.regime if system else None)
    out = dump(incident)
    out["clocks"] = [
        {
            "id": c.deadline.id,
            "kind": c.deadline.kind,
            "due": c.due.isoformat(),
            "state": c.state,
            "recipient": c.deadline.recipient,
        }
        for c in incident.deadlines(regime, now=_now(clock))
    ]
    out["report_log"] = [
        {
            "at": dt.datetime.fromtimestamp(e.at_ns / 1e9, VN_TZ).isoformat(),
            "actor": e.actor,
            "kind": e.kind,
            "format": e.format,
            "lang": e.lang,
            "sha256": e.sha256,
            "problems": e.problems,
        }
        for e in log
    ]
    if problems := incident.check_regime(regime):
        out["problems"] = problems
    sys.stdout.write(yaml.safe_dump(out, allow_unicode=True, sort_keys=False))
    return 0


def cmd_update(ns: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if ns.file == "-" else Path(ns.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", location=ns.file) from None
    from canhgac.config import load_yaml

    data = load_yaml(text, source=ns.file)
    if isinstance(data, dict):
        # What `show` adds is not part of the record.
        data = {k: v for k, v in data.items() if k not in ("clocks", "report_log", "problems")}
    incident = parse_model(Incident, data, source=ns.file)
    if incident.id != ns.incident_id:
        raise ConfigError(
            f"id is {incident.id!r}, not {ns.incident_id!r}", location=f"{ns.file}: id"
        )
    store = open_store(ns)
    try:
        system = store.get_system(incident.system_id) if incident.system_id else None
        regime = _regime(ns, system.regime if system else None)
        if problems := incident.check_regime(regime):
            raise ConfigError("; ".join(problems), location=ns.file)
        store.update_incident(incident)
        record_cli(store, "incident.update", incident.id, {"file": str(ns.file)})
    finally:
        store.close()
    print(f"incident {incident.id} updated")
    return 0


def _emit(ns: argparse.Namespace, report: Report) -> str:
    text = render(report, ns.format)
    if ns.output:
        Path(ns.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return text


def cmd_report(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    try:
        incident = _known(store, ns.incident_id)
        system = store.get_system(incident.system_id) if incident.system_id else None
        regime = _regime(ns, system.regime if system else None)
        build = build_initial if ns.kind == "initial" else build_closure
        report = build(incident, system, regime, lang=ns.lang)
        text = _emit(ns, report)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        entry = ReportLogEntry(
            clock(), ns.actor, ns.kind, ns.format, ns.lang, digest, len(report.problems)
        )
        store.log_report(incident.id, entry)
        detail = {"kind": ns.kind, "format": ns.format, "sha256": digest, "report_actor": ns.actor}
        record_cli(store, "incident.report", incident.id, detail, clock=clock)
    finally:
        store.close()
    return 0


def cmd_annual(ns: argparse.Namespace) -> int:
    regime = _regime(ns)
    store = open_store(ns)
    try:
        systems = [(s, store.get_dossier(s.id) or Dossier()) for s in store.list_systems()]
        incidents = store.list_incidents()
    finally:
        store.close()
    _emit(ns, build_annual(ns.year, regime, systems, incidents, lang=ns.lang))
    return 0


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["html", "json"], default="html")
    p.add_argument("--lang", choices=["vi", "en"], default="vi")
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.add_argument("--regimes", type=Path, help="regime directory (default: dossiers.regime_dir)")


def add_incident_commands(sub: Any, with_config: WithConfig) -> None:
    """Register `incidents ...` and `reports ...` on the collector's top-level subparsers."""
    incidents = sub.add_parser(
        "incidents", help="incident records, their legal clocks and reports"
    ).add_subparsers(dest="incidents_command", required=True)
    ls = with_config(incidents.add_parser("list", help="incidents by detection time"))
    ls.add_argument("--system", help="only this system's")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(fn=cmd_list)
    show = with_config(incidents.add_parser("show", help="an incident, its clocks (YAML)"))
    show.add_argument("incident_id", metavar="ID")
    show.add_argument("--regimes", type=Path, help="regime directory")
    show.set_defaults(fn=cmd_show)
    up = with_config(incidents.add_parser("update", help="replace an incident from YAML"))
    up.add_argument("incident_id", metavar="ID")
    up.add_argument("--file", "-f", required=True, help="the incident as YAML ('-': stdin)")
    up.add_argument("--regimes", type=Path, help="regime directory")
    up.set_defaults(fn=cmd_update)
    rp = with_config(incidents.add_parser("report", help="the initial or closure report"))
    rp.add_argument("incident_id", metavar="ID")
    rp.add_argument("--kind", choices=["initial", "closure"], required=True)
    rp.add_argument("--actor", default=_default_actor(), help="who, for the report log")
    _output_options(rp)
    rp.set_defaults(fn=cmd_report)
    reports = sub.add_parser("reports", help="periodic report documents").add_subparsers(
        dest="reports_command", required=True
    )
    an = with_config(reports.add_parser("annual", help="the annual report table (Mẫu 08)"))
    an.add_argument("--year", type=int, required=True)
    _output_options(an)
    an.set_defaults(fn=cmd_annual)
