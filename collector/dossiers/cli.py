"""`canhgac-collector systems ...`: the registry of information systems, in YAML.

Like the token commands these run beside the collector and act only through the store.
`export` writes every system with its dossier and assets; `import` of that file writes them
back unchanged (a second export is identical). An import is validated as a whole (every
model, duplicate ids, assets claimed twice, within the file or against systems not in it)
before anything is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import Field, ValidationError, model_validator

from canhgac.config import StrictModel, format_validation_error, load_yaml, parse_model
from canhgac.errors import ConfigError
from collector.audit.cli import record_cli
from collector.dossiers.model import (
    REVIEW_KINDS,
    STATUS_LABELS,
    AssetConflictError,
    Assets,
    Decision,
    Dossier,
    DossierStatus,
    InformationSystem,
    RegistryError,
    ReviewRecord,
    asset_conflicts,
    dump,
    transition,
)
from collector.enroll.cli import open_store
from collector.storage.base import Store

Clock = Callable[[], int]
WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


class SystemRecord(StrictModel):
    """One system as exported: the system, its dossier, its assets."""

    system: InformationSystem
    dossier: Dossier = Dossier()
    assets: Assets = Assets()


class RegistryFile(StrictModel):
    """An export file: systems with distinct ids, no asset in two of them."""

    systems: tuple[SystemRecord, ...] = Field(default=())

    @model_validator(mode="after")
    def _consistent(self) -> RegistryFile:
        ids = [r.system.id for r in self.systems]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"systems: listed more than once: {', '.join(twice)}")
        conflicts = asset_conflicts({r.system.id: r.assets for r in self.systems})
        if conflicts:
            raise ValueError("; ".join(map(str, conflicts)))
        return self


def _read(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", location=path) from None
    return load_yaml(text, source=path)


def _write_yaml(data: Any) -> None:
    sys.stdout.write(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def _record(store: Store, system: InformationSystem) -> SystemRecord:
    return SystemRecord(
        system=system,
        dossier=store.get_dossier(system.id) or Dossier(),
        assets=store.get_assets(system.id) or Assets(),
    )


def _known(store: Store, system_id: str) -> InformationSystem:
    system = store.get_system(system_id)
    if system is None:
        raise RegistryError("no such system", location=system_id)
    return system


def cmd_list(ns: argparse.Namespace) -> int:
    store = open_store(ns)
    try:
        records = [_record(store, s) for s in store.list_systems()]
    finally:
        store.close()
    for r in records:
        s, status = r.system, r.dossier.status
        if ns.json:
            row = {"id": s.id, "name": s.name, "proposed_level": s.proposed_level}
            row |= {"approved_level": s.approved_level, "dossier_status": status}
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(
                f"{s.id}  {s.name}  proposed={s.proposed_level or '-'}  "
                f"approved={s.approved_level or '-'}  dossier={status} "
                f"({STATUS_LABELS[status]})  assets={len(r.assets.items())}"
            )
    if not records and not ns.json:
        print("no systems")
    return 0


def cmd_show(ns: argparse.Namespace) -> int:
    store = open_store(ns)
    try:
        record = _record(store, _known(store, ns.system_id))
        history = store.dossier_history(ns.system_id)
    finally:
        store.close()
    out = dump(record)
    out["dossier"]["status_label"] = STATUS_LABELS[record.dossier.status]
    out["history"] = [
        {
            "at": dt.datetime.fromtimestamp(e.at_ns / 1e9, dt.UTC).isoformat(),
            "actor": e.actor,
            "from": e.from_status,
            "to": e.to_status,
            "note": e.note,
        }
        for e in history
    ]
    _write_yaml(out)
    return 0


def cmd_create(ns: argparse.Namespace) -> int:
    system = parse_model(InformationSystem, _read(ns.file), source=ns.file)
    store = open_store(ns)
    try:
        if store.get_system(system.id) is not None:
            raise RegistryError("exists already: use `systems edit`", location=system.id)
        store.upsert_system(system)
        record_cli(store, "system.create", system.id, {"file": str(ns.file)})
    finally:
        store.close()
    print(f"system {system.id} created")
    return 0


def cmd_edit(ns: argparse.Namespace) -> int:
    system = parse_model(InformationSystem, _read(ns.file), source=ns.file)
    if system.id != ns.system_id:
        raise ConfigError(f"id is {system.id!r}, not {ns.system_id!r}", location=f"{ns.file}: id")
    store = open_store(ns)
    try:
        _known(store, ns.system_id)
        store.upsert_system(system)
        record_cli(store, "system.edit", system.id, {"file": str(ns.file)})
    finally:
        store.close()
    print(f"system {system.id} updated")
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    store = open_store(ns)
    try:
        systems = [_known(store, ns.system_id)] if ns.system_id else store.list_systems()
        exported = RegistryFile(systems=tuple(_record(store, s) for s in systems))
    finally:
        store.close()
    _write_yaml(dump(exported))
    return 0


def cmd_import(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    registry = parse_model(RegistryFile, _read(ns.file), source=ns.file)
    store = open_store(ns)
    try:
        imported = {r.system.id for r in registry.systems}
        final = {s.id: store.get_assets(s.id) or Assets() for s in store.list_systems()}
        final |= {r.system.id: r.assets for r in registry.systems}
        conflicts = [c for c in asset_conflicts(final) if c.system_id in imported]
        if conflicts:
            raise AssetConflictError(conflicts, location=ns.file)
        changed = [r for r in registry.systems if store.get_assets(r.system.id) != r.assets]
        for r in registry.systems:
            store.upsert_system(r.system)
        # Clear first, so assets may move between two imported systems.
        for r in changed:
            store.set_assets(r.system.id, Assets())
        for r in changed:
            store.set_assets(r.system.id, r.assets)
        for r in registry.systems:
            if store.get_dossier(r.system.id) != r.dossier:
                # A restore, not a step of the lifecycle: the Dossier model still refuses an
                # approval without a Quy chế.
                note = f"imported {ns.file}"
                store.set_dossier(r.system.id, r.dossier, actor=ns.actor, at_ns=clock(), note=note)
        systems = sorted(imported)
        record_cli(store, "system.import", "", {"file": str(ns.file), "systems": systems})
    finally:
        store.close()
    print(f"{len(registry.systems)} system(s) imported from {ns.file}")
    return 0


def cmd_delete(ns: argparse.Namespace) -> int:
    store = open_store(ns)
    try:
        if not store.delete_system(ns.system_id):
            raise RegistryError("no such system", location=ns.system_id)
        record_cli(store, "system.delete", ns.system_id)
    finally:
        store.close()
    print(f"system {ns.system_id} deleted (its dossier history is kept)")
    return 0


def cmd_assets(ns: argparse.Namespace) -> int:
    given = {"agents": ns.agent, "hostnames": ns.hostname, "cidrs": ns.cidr}
    store = open_store(ns)
    try:
        current = store.get_assets(ns.system_id)
        if current is None:
            raise RegistryError("no such system", location=ns.system_id)
        if not ns.clear and not any(given.values()):
            _write_yaml(dump(current))
            return 0
        if ns.add:
            given = {k: [*getattr(current, k), *v] for k, v in given.items()}
        assets = _validated(Assets, given, "--agent/--hostname/--cidr")
        store.set_assets(ns.system_id, assets)
        record_cli(store, "system.assets", ns.system_id, {"assets": len(assets.items())})
    finally:
        store.close()
    print(f"system {ns.system_id}: {len(assets.items())} asset(s)")
    return 0


def _validated(model: type[Any], data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(format_validation_error(exc)), location=where) from None


def _decision(number: str | None, date: dt.date | None, issuer: str | None, flag: str) -> Any:
    if number is None and date is None and issuer is None:
        return None
    if number is None or date is None or issuer is None:
        raise ConfigError("give the number, the date and the issuer together", location=flag)
    return _validated(Decision, {"number": number, "date": date, "issuer": issuer}, flag)


def cmd_dossier(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    approval = _decision(ns.decision_number, ns.decision_date, ns.issuer, "--decision-*")
    quy_che = _decision(ns.quy_che_number, ns.quy_che_date, ns.quy_che_issuer, "--quy-che-*")
    store = open_store(ns)
    try:
        before = store.get_dossier(ns.system_id)
        if before is None:
            raise RegistryError("no such system", location=ns.system_id)
        after = before
        if ns.appraisal_body is not None:
            after = after.model_copy(update={"appraisal_body": ns.appraisal_body})
        if quy_che is not None:
            after = after.model_copy(update={"quy_che_decision": quy_che})
        if ns.status is not None:
            after = transition(after, ns.status, decision=approval)
        elif approval is not None:
            raise RegistryError("an approval decision goes with --status approved")
        after = _validated(Dossier, dump(after), ns.system_id)
        if after != before:
            store.set_dossier(
                ns.system_id,
                after,
                actor=ns.actor,
                at_ns=clock(),
                note=ns.note or "",
                expect_status=before.status,
            )
            action = "system.approve" if after.status == "approved" else "system.dossier"
            detail = {"status_before": before.status, "status_after": after.status}
            record_cli(store, action, ns.system_id, detail | {"dossier_actor": ns.actor})
    finally:
        store.close()
    print(f"system {ns.system_id}: dossier {after.status} ({STATUS_LABELS[after.status]})")
    return 0


def cmd_review(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    """Append one review record (log/account review, scan, pentest, restore test) to the
    system's dossier; the dossier history notes "review recorded"."""
    from collector.dossiers.clock import VN_TZ

    now_ns = clock()
    today = dt.datetime.fromtimestamp(now_ns / 1e9, VN_TZ).date()
    if ns.date > today:
        raise ConfigError(f"{ns.date} is after today ({today}) in Vietnam", location="--date")
    given = {"kind": ns.kind, "date": ns.date, "by": ns.by, "scope": ns.scope}
    given |= {"notes": ns.notes, "file_ref": ns.file_ref}
    record = _validated(ReviewRecord, given, "--kind/--date/...")
    store = open_store(ns)
    try:
        before = store.get_dossier(ns.system_id)
        if before is None:
            raise RegistryError("no such system", location=ns.system_id)
        after = before.model_copy(update={"reviews": (*before.reviews, record)})
        after = _validated(Dossier, dump(after), ns.system_id)
        store.set_dossier(
            ns.system_id,
            after,
            actor=ns.actor,
            at_ns=now_ns,
            note="review recorded",
            expect_status=before.status,
        )
        detail = {"kind": record.kind, "date": record.date.isoformat(), "dossier_actor": ns.actor}
        record_cli(store, "system.review", ns.system_id, detail)
    finally:
        store.close()
    print(
        f"system {ns.system_id}: {record.kind} of {record.date.isoformat()} recorded "
        f"({len(after.reviews)} review record(s))"
    )
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date as YYYY-MM-DD") from None


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cmd_level(ns: argparse.Namespace) -> int:
    """The minimum level the system's regime requires, with the criteria and articles."""
    from collector import config as cfgmod
    from collector.dossiers.assess import assess
    from collector.dossiers.regime import load_regimes

    config = cfgmod.load(ns.config)
    store = open_store(ns)
    try:
        system = _record(store, _known(store, ns.system_id)).system
    finally:
        store.close()
    regime = load_regimes(ns.regimes or config.dossiers.regime_dir).select(system.regime)
    result = assess(system, regime)
    out: dict[str, Any] = {
        "system": system.id,
        "regime": result.regime_id,
        "minimum_level": result.level,
        "proposed_level": system.proposed_level,
        "approved_level": system.approved_level,
        "criteria": [
            {
                "id": c.id,
                "level": c.level,
                "article": c.article,
                "description": c.description.vi,
                "confidence": c.confidence,
            }
            for c in result.applied
        ],
    }
    for name in ("proposed_level", "approved_level"):
        level = out[name]
        if level is not None and level < result.level:
            out.setdefault("warnings", []).append(
                f"{name} {level} is below the minimum level {result.level} the regime requires"
            )
    _write_yaml(out)
    return 0


def add_systems_commands(sub: Any, with_config: WithConfig) -> None:
    """Register `systems ...` on the collector's top-level subparsers."""
    systems = sub.add_parser(
        "systems", help="information systems, their level dossiers and assets"
    ).add_subparsers(dest="systems_command", required=True)

    def command(name: str, help_: str, fn: Callable[..., int], *, by_id: bool = True) -> Any:
        p = with_config(systems.add_parser(name, help=help_))
        if by_id:
            p.add_argument("system_id", metavar="ID")
        p.set_defaults(fn=fn)
        return p

    command("list", "every system, its levels and dossier status", cmd_list, by_id=False)
    sub_list = systems.choices["list"]
    sub_list.add_argument("--json", action="store_true", help="one JSON object per line")
    command("show", "a system, its dossier, assets and dossier history (YAML)", cmd_show)
    command("create", "register a system from a YAML file", cmd_create, by_id=False).add_argument(
        "--file", "-f", required=True, help="the system as YAML ('-': standard input)"
    )
    command("edit", "replace a system's description from a YAML file", cmd_edit).add_argument(
        "--file", "-f", required=True, help="the system as YAML ('-': standard input)"
    )
    ex = command("export", "systems with dossiers and assets, as YAML", cmd_export, by_id=False)
    ex.add_argument("system_id", metavar="ID", nargs="?", help="only this system")
    im = command("import", "create or replace systems from an export file", cmd_import, by_id=False)
    im.add_argument("file", metavar="FILE")
    im.add_argument("--actor", default=_default_actor(), help="who, for the dossier history")
    command("delete", "remove a system that has no assets left", cmd_delete)
    lv = command(
        "level", "the minimum level the system's legal regime requires, and why", cmd_level
    )
    lv.add_argument("--regimes", type=Path, help="regime directory (default: dossiers.regime_dir)")
    a = command("assets", "show or set the agents, host names and networks of a system", cmd_assets)
    a.add_argument("--agent", action="append", default=[], help="agent id (repeatable)")
    a.add_argument("--hostname", action="append", default=[], help="host name (repeatable)")
    a.add_argument("--cidr", action="append", default=[], help="network, e.g. 10.20.0.0/24")
    a.add_argument("--add", action="store_true", help="add to the assets instead of replacing")
    a.add_argument("--clear", action="store_true", help="remove every asset of the system")
    d = command("dossier", "move the level dossier through its lifecycle", cmd_dossier)
    d.add_argument("--status", choices=list(get_args(DossierStatus)))
    d.add_argument("--decision-number", help="approval decision number (with --status approved)")
    d.add_argument("--decision-date", type=_date, help="approval decision date, YYYY-MM-DD")
    d.add_argument("--issuer", help="who issued the approval decision")
    d.add_argument("--quy-che-number", help="Quy chế decision number")
    d.add_argument("--quy-che-date", type=_date, help="Quy chế decision date, YYYY-MM-DD")
    d.add_argument("--quy-che-issuer", help="who issued the Quy chế decision")
    d.add_argument("--appraisal-body", help="who appraises the dossier")
    d.add_argument("--note", help="why, for the dossier history")
    d.add_argument("--actor", default=_default_actor(), help="who, for the dossier history")
    r = command("review", "record a log/account review, scan, pentest or restore test", cmd_review)
    r.add_argument("--kind", required=True, choices=list(REVIEW_KINDS), help="what was done")
    r.add_argument("--date", required=True, type=_date, help="when it was done, YYYY-MM-DD")
    r.add_argument("--by", default="", help="who did it")
    r.add_argument("--scope", default="", help="what it covered")
    r.add_argument("--notes", default="", help="result, remarks")
    r.add_argument("--file-ref", default="", help="where its report is filed")
    r.add_argument("--actor", default=_default_actor(), help="who, for the dossier history")
