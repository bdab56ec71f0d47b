"""`canhgac-collector`: run, validate, example, alerts, agents, tokens, children, ..."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from canhgac.errors import CanhGacError, StorageError
from canhgac.logs import setup_logging
from canhgac.v1 import events_pb2
from collector import config as cfgmod
from collector.audit.cli import add_audit_commands
from collector.detection.cli import add_rules_commands
from collector.detection.worker import SEVERITY_NAMES
from collector.dossiers.cli import add_systems_commands
from collector.dossiers.components_cli import add_components_commands
from collector.dossiers.findings_cli import add_findings_commands
from collector.dossiers.incident_cli import add_incident_commands
from collector.enroll.cli import add_agent_revoke, add_token_commands
from collector.evidence.cli import add_evidence_commands
from collector.forward.children_cli import add_children_commands
from collector.forward.cli import add_forward_commands
from collector.storage.base import StoredAlert
from collector.web.auth_cli import add_auth_commands

DEFAULT_CONFIG = "/etc/canhgac/collector.yaml"


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _alert_dict(a: StoredAlert) -> dict[str, Any]:
    d = MessageToDict(a.alert, preserving_proto_field_name=True)
    d["status"] = a.status
    return d


def _print_alert(a: StoredAlert, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_alert_dict(a), ensure_ascii=False), flush=True)
        return
    al = a.alert
    sev = SEVERITY_NAMES.get(al.severity, "unknown")
    print(
        f"{_when(al.created_ns)}  {sev:8}  {al.rule_title}  host={al.host}  "
        f"{al.summary}  [{a.status}] id={al.id}",
        flush=True,
    )


def cmd_run(ns: argparse.Namespace) -> int:
    from collector.app import run_forever

    config = cfgmod.load(ns.config)
    setup_logging(config.logging.level, config.logging.format)
    asyncio.run(run_forever(config))
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    cfgmod.load(ns.config)
    print(f"{ns.config}: valid")
    return 0


def cmd_example(ns: argparse.Namespace) -> int:
    sys.stdout.write(cfgmod.example_text())
    return 0


def _store(ns: argparse.Namespace) -> Any:
    """The store, for commands that only read: they never create a database."""
    from collector.app import open_configured_store

    config = cfgmod.load(ns.config)
    if config.storage.kind == "sqlite" and not config.sqlite_path().exists():
        raise StorageError(
            "no database yet: start the collector with this configuration first",
            location=str(config.sqlite_path()),
        )
    worker = open_configured_store(config)
    # Idempotent; lets these commands read a database the collector has not migrated yet.
    worker.store.migrate()
    return worker.store


def cmd_alerts_list(ns: argparse.Namespace) -> int:
    store = _store(ns)
    try:
        rows = store.recent_alerts(ns.limit)
        for a in rows:
            _print_alert(a, ns.json)
        if not rows and not ns.json:
            print("no alerts")
    finally:
        store.close()
    return 0


def cmd_alerts_tail(ns: argparse.Namespace) -> int:
    store = _store(ns)
    try:
        rows = store.recent_alerts(max(ns.limit, 1))
        for a in rows[-ns.limit :] if ns.limit else []:
            _print_alert(a, ns.json)
        cursor = rows[-1].row_id if rows else 0
        deadline = time.monotonic() + ns.timeout if ns.timeout else None
        while deadline is None or time.monotonic() < deadline:
            new = store.alerts(after_row=cursor, limit=1000)
            for a in new:
                _print_alert(a, ns.json)
                cursor = a.row_id
            if not new:
                # Another process (the collector) writes the alerts: poll the database.
                time.sleep(ns.interval)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def cmd_agents_list(ns: argparse.Namespace) -> int:
    store = _store(ns)
    try:
        for g in store.list_agents():
            status = events_pb2.AgentStatus()
            status.ParseFromString(g.status)
            if ns.json:
                row = {
                    "agent_id": g.agent_id,
                    "hostname": g.hostname,
                    "version": g.version,
                    "first_seen_ns": g.first_seen_ns,
                    "last_seen_ns": g.last_seen_ns,
                    "last_seq": store.last_seq(g.agent_id),
                    "status": MessageToDict(status, preserving_proto_field_name=True),
                    "enrollment_status": g.enrollment_status,
                    "system_id": store.system_of_agent(g.agent_id) or "",
                    "enrolled_for": g.system_id,
                    "cert_serial": g.cert_serial,
                    "cert_not_after_ns": g.cert_not_after_ns,
                    "revoked_ns": g.revoked_ns,
                }
                print(json.dumps(row, ensure_ascii=False))
            else:
                cert = f"  cert_expires={_when(g.cert_not_after_ns)}" if g.cert_not_after_ns else ""
                drops = ",".join(f"{d.source}/{d.reason}:{d.count}" for d in status.drops)
                cert += f"  drops={drops or 0}"
                print(
                    f"{g.agent_id}  [{g.enrollment_status or 'not enrolled'}]  "
                    f"system={store.system_of_agent(g.agent_id) or '-'}  "
                    f"host={g.hostname}  version={g.version}  "
                    f"last_seen={_when(g.last_seen_ns) if g.last_seen_ns else 'never'}  "
                    f"last_seq={store.last_seq(g.agent_id)}  "
                    f"spool={status.spool_events}  rss={status.rss_bytes // 1024} KiB{cert}"
                )
    finally:
        store.close()
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canhgac-collector", description="Canh Gác collector")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG))
        return sp

    with_config(sub.add_parser("run", help="run the collector")).set_defaults(fn=cmd_run)
    with_config(sub.add_parser("validate", help="check a configuration file")).set_defaults(
        fn=cmd_validate
    )
    sub.add_parser("example", help="print an example configuration").set_defaults(fn=cmd_example)

    alerts = sub.add_parser("alerts", help="list or follow alerts").add_subparsers(
        dest="alerts_command", required=True
    )
    al = with_config(alerts.add_parser("list", help="the most recent alerts"))
    al.add_argument("--limit", type=_positive, default=50)
    al.add_argument("--json", action="store_true", help="one JSON object per line")
    al.set_defaults(fn=cmd_alerts_list)
    at = with_config(alerts.add_parser("tail", help="print alerts as they are raised"))
    at.add_argument("--limit", type=int, default=10, help="recent alerts to show first")
    at.add_argument("--json", action="store_true")
    at.add_argument("--interval", type=float, default=0.5)
    at.add_argument("--timeout", type=float, default=0, help="stop after N seconds (0: never)")
    at.set_defaults(fn=cmd_alerts_tail)

    agents = sub.add_parser("agents", help="agent registry").add_subparsers(
        dest="agents_command", required=True
    )
    ag = with_config(agents.add_parser("list", help="known agents and their health"))
    ag.add_argument("--json", action="store_true")
    ag.set_defaults(fn=cmd_agents_list)
    add_agent_revoke(agents, with_config)
    add_token_commands(sub, with_config)
    add_rules_commands(sub, with_config)
    add_systems_commands(sub, with_config)
    add_incident_commands(sub, with_config)
    add_findings_commands(sub, with_config)
    add_components_commands(sub, with_config)
    add_auth_commands(sub, with_config)
    add_forward_commands(sub, with_config)
    add_children_commands(sub, with_config)
    add_audit_commands(sub, with_config)
    add_evidence_commands(sub, with_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        rc: int = ns.fn(ns)
    except CanhGacError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
