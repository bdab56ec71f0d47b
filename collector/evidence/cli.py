"""`canhgac-collector evidence export|verify|public-key`.

`verify` needs no configuration and no database: an assessor runs it on their own machine with
the bundle and the public key the operator gave them (out of band: by letter, or read aloud
as its fingerprint). Exit codes: 0 verified, 1 problems found, 2 refused (CanhGacError).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canhgac.errors import TlsError
from collector.evidence.errors import EvidenceError
from collector.evidence.period import parse_when
from collector.evidence.signing import fingerprint, load_or_create_key, load_public_key, public_pem
from collector.evidence.verify import verify_bundle

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def cmd_export(ns: argparse.Namespace) -> int:
    from collector import config as cfgmod
    from collector.enroll.cli import open_store
    from collector.evidence.export import export_bundle

    config = cfgmod.load(ns.config)
    start = parse_when(ns.from_, location="--from")
    end = parse_when(ns.to, location="--to")
    key = load_or_create_key(config.state_dir)
    store = open_store(ns)
    try:
        result = export_bundle(
            store,
            ns.system,
            start,
            end,
            ns.out,
            config=config,
            key=key,
            raw_events=ns.raw_events,
            force=ns.force,
            actor=f"cli:{getpass.getuser()}",
            gap_threshold_s=ns.gap_threshold,
        )
    finally:
        store.close()
    print(f"{result.path}: {len(result.files)} files, {result.events} events")
    print(f"sha256 {result.sha256}")
    print(f"signed by key {fingerprint(key)}")
    return 0


def cmd_verify(ns: argparse.Namespace) -> int:
    try:
        pem = Path(ns.public_key).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read: {exc.strerror}", location=ns.public_key) from None
    key = load_public_key(pem, location=ns.public_key)
    if not Path(ns.bundle).is_file():
        raise EvidenceError("no such file", location=str(ns.bundle))
    report = verify_bundle(Path(ns.bundle), key)
    for problem in report.problems:
        print(f"FAIL {problem}")
    if report.ok:
        m = report.manifest or {}
        system = m.get("system", {}).get("id", "?")
        period = m.get("period", {})
        print(
            f"OK: signature valid, {report.files_checked} files intact, audit chain intact "
            f"(system {system}, {period.get('from')} to {period.get('to')})"
        )
        return 0
    print(f"{len(report.problems)} problem(s): the bundle is NOT verified", file=sys.stderr)
    return 1


def cmd_public_key(ns: argparse.Namespace) -> int:
    from collector import config as cfgmod

    key = load_or_create_key(cfgmod.load(ns.config).state_dir)
    sys.stdout.write(public_pem(key).decode())
    print(f"# SHA-256 of the raw key: {fingerprint(key)}", file=sys.stderr)
    return 0


def _seconds(text: str) -> int:
    value = int(text)
    if not 60 <= value <= 30 * 86_400:
        raise argparse.ArgumentTypeError("must be 60 to 2592000 seconds")
    return value


def add_evidence_commands(sub: Any, with_config: WithConfig) -> None:
    ev = sub.add_parser("evidence", help="signed evidence bundles for assessors")
    esub = ev.add_subparsers(dest="evidence_command", required=True)
    ex = with_config(esub.add_parser("export", help="write a signed bundle of one system"))
    ex.add_argument("--system", required=True, help="information system id")
    ex.add_argument("--from", dest="from_", required=True, help="YYYY-MM-DD or ISO time")
    ex.add_argument("--to", required=True, help="end of the period (excluded)")
    ex.add_argument("--out", required=True, type=Path, help="bundle file to write (.tar)")
    ex.add_argument("--raw-events", action="store_true", help="include the events (gzip JSONL)")
    ex.add_argument("--force", action="store_true", help="replace an existing --out file")
    ex.add_argument(
        "--gap-threshold", type=_seconds, default=3600, help="silence reported as a gap (s)"
    )
    ex.set_defaults(fn=cmd_export)
    ve = esub.add_parser("verify", help="verify a bundle offline (no config, no database)")
    ve.add_argument("bundle", metavar="FILE")
    ve.add_argument("--public-key", required=True, help="the collector's public key (PEM)")
    ve.set_defaults(fn=cmd_verify)
    pk = with_config(esub.add_parser("public-key", help="print the signing public key (PEM)"))
    pk.set_defaults(fn=cmd_public_key)
