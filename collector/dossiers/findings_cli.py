"""`canhgac-collector findings`: compliance findings with their legal basis (exit 0: a finding
is a report, not an error)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.dossiers.findings import Finding

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def render(f: Finding) -> str:
    where = f.system_id or f"agent {f.agent_id} ({f.hostname or '-'})"
    lines = [
        f"[{f.severity}] {f.code} {where}"
        + (" (cannot be judged)" if f.outcome != "violation" else "")
    ]
    lines += [f"  vi: {f.message_vi}", f"  en: {f.message_en}"]
    for b in f.basis:
        lines.append(f"  basis: {b.source} [{b.confidence}]" + (f" ({b.note})" if b.note else ""))
    return "\n".join(lines)


def cmd_findings(ns: argparse.Namespace) -> int:
    from collector import config as cfgmod
    from collector.dossiers.findings_worker import all_findings
    from collector.dossiers.regime import load_regimes
    from collector.enroll.cli import open_store

    config = cfgmod.load(ns.config)
    registry = load_regimes(ns.regimes or config.dossiers.regime_dir)
    regime = registry.select(config.dossiers.regime)
    store = open_store(ns)
    now = dt.datetime.now(dt.UTC)
    try:
        found = all_findings(store, regime, config, now, regimes=registry, system_id=ns.system)
    finally:
        store.close()
    for f in found:
        print(json.dumps(f.to_json(), ensure_ascii=False) if ns.json else render(f))
    if not found and not ns.json:
        print("no findings")
    return 0


def add_findings_commands(sub: Any, with_config: WithConfig) -> None:
    p = with_config(sub.add_parser("findings", help="compliance findings and their legal basis"))
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--system", help="only this system's findings")
    p.add_argument("--regimes", type=Path, help="regime directory (default: dossiers.regime_dir)")
    p.set_defaults(fn=cmd_findings)
