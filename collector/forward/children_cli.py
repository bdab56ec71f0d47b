"""`canhgac-collector children issue|list|revoke`: the parent's registry of child collectors.

These run as separate processes next to the collector and act only through the store and the
CA files: the running collector looks every child certificate up in the store on each batch,
so an issue or a revocation takes effect at the child's next batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canhgac.errors import ConfigError, TlsError
from collector import config as cfgmod
from collector.audit.cli import record_cli
from collector.forward.children import ca_files, issue_child
from collector.forward.cli import local_time
from collector.forward.upstream_service import NAME_RE
from collector.storage.base import Store
from collector.storage.enrollment import ChildCertificate

Clock = Callable[[], int]
WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
DEFAULT_REASON = "child revoked"


def _open(ns: argparse.Namespace) -> Store:
    from collector.enroll.cli import open_store  # the app's wiring, imported only when run

    return open_store(ns)


def _state(c: ChildCertificate, now_ns: int) -> str:
    if c.revoked_ns:
        return "revoked"
    return "expired" if now_ns >= c.not_after_ns else "valid"


def _row(c: ChildCertificate, now_ns: int) -> dict[str, Any]:
    return {
        "name": c.name,
        "serial": c.serial,
        "issued": local_time(c.issued_ns),
        "expires": local_time(c.not_after_ns),
        "state": _state(c, now_ns),
        "revoked": local_time(c.revoked_ns),
        "revoke_reason": c.revoke_reason,
    }


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the first byte (O_EXCL: never over an existing file).
    The fchmod undoes the umask, which could only have narrowed the mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _read_ca(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the CA: {exc.strerror}", location=str(path)) from None


def cmd_children_issue(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    if not NAME_RE.match(ns.name):
        raise ConfigError(
            "must be 1-128 characters of letters, digits, '.', '_' or '-' (the child's "
            "collector name)",
            location="NAME",
        )
    out: Path = ns.out
    cert_path, key_path = out / f"{ns.name}.crt", out / f"{ns.name}.key"
    existing = [str(p) for p in (cert_path, key_path) if p.exists()]
    if existing:
        print(f"error: will not overwrite {', '.join(existing)}", file=sys.stderr)
        return 1
    ca = ca_files(cfgmod.load(ns.config))
    ca_cert, ca_key = _read_ca(ca.cert), _read_ca(ca.key)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.fromtimestamp(clock() / 1e9, dt.UTC)
    store = _open(ns)
    try:
        issued = issue_child(store, ca_cert, ca_key, ns.name, now)
        # Serial and validity only: never the key.
        detail = {"serial": issued.record.serial, "not_after_ns": issued.record.not_after_ns}
        record_cli(store, "child.issue", ns.name, detail, clock=clock)
    finally:
        store.close()
    # The key first: a certificate without its key is useless, a key alone is visibly partial.
    try:
        _write_new(key_path, issued.key_pem, 0o600)
        _write_new(cert_path, issued.cert_pem, 0o644)
    except FileExistsError as exc:  # created by someone else since the check above
        print(
            f"error: will not overwrite {exc.filename}; certificate {issued.record.serial} is "
            f"recorded but unused: children revoke {ns.name}",
            file=sys.stderr,
        )
        return 1
    print(
        f"child {ns.name}: certificate serial {issued.record.serial}, expires "
        f"{local_time(issued.record.not_after_ns)}\n"
        f"  certificate: {cert_path}\n"
        f"  key:         {key_path} (secret: hand it over privately, then delete this copy)\n"
        f"  parent CA:   {ca.cert}\n"
        "Hand all three to the child's operator (its parent_grpc destination's client_cert_file, "
        "client_key_file and ca_file)."
    )
    return 0


def cmd_children_list(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = _open(ns)
    try:
        certificates = store.list_child_certificates()
    finally:
        store.close()
    now = clock()
    for c in certificates:
        row = _row(c, now)
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        revoked = f" {row['revoked']} ({c.revoke_reason})" if c.revoked_ns else ""
        print(
            f"{c.name}  serial={c.serial}  issued={row['issued']}  expires={row['expires']}  "
            f"{row['state']}{revoked}"
        )
    if not certificates and not ns.json:
        print("no child certificates")
    return 0


def cmd_children_revoke(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    reason = ns.reason or DEFAULT_REASON
    store = _open(ns)
    try:
        count = store.revoke_child(ns.name, clock(), reason)
        if count:
            detail = {"certificates": count, "reason": reason}
            record_cli(store, "child.revoke", ns.name, detail, clock=clock)
    finally:
        store.close()
    if not count:
        print(
            f"error: child {ns.name!r} has no unrevoked certificate: nothing to revoke "
            "(children list shows what is on record)",
            file=sys.stderr,
        )
        return 1
    print(
        f"child {ns.name} revoked ({count} certificate(s)): its next batch is refused "
        "(PERMISSION_DENIED, child_revoked). To let it back, issue a new certificate: "
        f"children issue {ns.name} --out DIR"
    )
    return 0


def add_children_commands(sub: Any, with_config: WithConfig) -> None:
    children = sub.add_parser(
        "children", help="child collectors' certificates (this collector as their parent)"
    ).add_subparsers(dest="children_command", required=True)
    ci = with_config(
        children.add_parser("issue", help="issue and record a child collector's certificate")
    )
    ci.add_argument("name", metavar="NAME", help="the child collector's name")
    ci.add_argument(
        "--out", type=Path, required=True, help="folder for NAME.crt and NAME.key (not replaced)"
    )
    ci.set_defaults(fn=cmd_children_issue)
    cl = with_config(children.add_parser("list", help="child certificates and their state"))
    cl.add_argument("--json", action="store_true", help="one JSON object per line")
    cl.set_defaults(fn=cmd_children_list)
    cr = with_config(
        children.add_parser("revoke", help="revoke a child's certificates: refuse its batches")
    )
    cr.add_argument("name", metavar="NAME")
    cr.add_argument("--reason", help=f"recorded with the revocation (default: {DEFAULT_REASON})")
    cr.set_defaults(fn=cmd_children_revoke)
