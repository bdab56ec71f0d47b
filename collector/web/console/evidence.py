"""The assessor's page: export one system's signed evidence bundle from the console.

An assessor (a time-boxed account scoped to the systems under assessment) or an admin picks a
system in scope and a period, and downloads the same signed bundle `canhgac-collector evidence
export` writes, to verify offline with the public key shown on the page.

Where the export runs. `export_bundle` reads every event of the period and can take minutes;
run on the StoreWorker's single thread it would hold up ingest commits, alert inserts and every
console read for as long. So each export opens a second Store connection of its own, exactly as
the CLI does from another process, and runs on a worker thread (`asyncio.to_thread`), never on
the loop: SQLite in WAL mode lets that reader run beside the collector's writer, PostgreSQL
simply gets a second connection. The one write, the `evidence.export` audit record, is safe
against a concurrent writer (`append_audit` is atomic for the CLI's sake). One export runs at a
time per collector; a second request meanwhile is told to come back later.

The bundle is written under `state_dir/evidence-exports/`, opened, and unlinked before the
download starts, so the file is gone whatever happens to the download (the open descriptor
keeps the data readable until the response ends).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from canhgac.errors import CanhGacError
from collector.config import CollectorConfig
from collector.dossiers.model import InformationSystem
from collector.dossiers.regime import Regime
from collector.evidence.errors import EvidenceError
from collector.evidence.export import export_bundle
from collector.evidence.period import Period, check_period, parse_when
from collector.evidence.signing import fingerprint, load_or_create_key, public_pem
from collector.metrics import CollectorMetrics
from collector.storage.base import Store
from collector.storage.registry import open_store
from collector.storage.worker import StoreWorker
from collector.web.auth.policy import Principal, form_fields, requires
from collector.web.auth.users import Role
from collector.web.console.render import console, page, translator

log = logging.getLogger("canhgac.collector.console")

EVIDENCE_ROLES: tuple[Role, ...] = ("assessor", "admin")
EXPORT_DIR = "evidence-exports"
STALE_S = 3600  # a leftover bundle (the process died mid-download) older than this is removed
_CHUNK = 1 << 20
_NAME_PART = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class EvidenceExports:
    """What the page needs besides the app's store: the configuration (export_bundle reads
    the rules, the regimes and the redacted configuration from it), how to open a second
    Store connection for one export, and the signing key (loaded on first use)."""

    config: CollectorConfig
    open_store: Callable[[], Store]
    regimes: Mapping[str, Regime] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _key: Ed25519PrivateKey | None = None

    @classmethod
    def from_config(cls, config: CollectorConfig) -> EvidenceExports:
        def connect() -> Store:
            st = config.storage
            dsn = st.postgres_dsn.get_secret_value() if st.postgres_dsn else None
            return open_store(st.kind, sqlite_path=config.sqlite_path(), postgres_dsn=dsn)

        return cls(config, connect)

    def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = load_or_create_key(self.config.state_dir)
        return self._key

    @property
    def work_dir(self) -> Path:
        return self.config.state_dir / EXPORT_DIR


def _exports(request: Request) -> EvidenceExports | None:
    found: EvidenceExports | None = getattr(request.app.state, "evidence", None)
    return found


def _store(request: Request) -> StoreWorker:
    store: StoreWorker = request.app.state.store
    return store


def _count_error(request: Request, error_type: str) -> None:
    metrics: CollectorMetrics = request.app.state.metrics
    metrics.errors.labels(stage="console", error_type=error_type).inc()


def _now(request: Request) -> dt.datetime:
    return dt.datetime.fromtimestamp(console(request).clock_ns() / 1e9, dt.UTC)


async def _systems_in_scope(request: Request) -> list[InformationSystem]:
    """The registered systems the caller may export: all for an admin, else its scope."""
    principal: Principal = request.state.principal
    store = _store(request)
    systems = await store.run(store.store.list_systems)
    return [s for s in systems if principal.can_see_system(s.id)]


async def _render(
    request: Request,
    exports: EvidenceExports | None,
    status: int = 200,
    *,
    error: str = "",
    form: Mapping[str, str] | None = None,
) -> Response:
    if exports is None:
        return page(request, "evidence.html", 503, configured=False, error="", systems=[], form={})
    key = await asyncio.to_thread(exports.key)
    return page(
        request,
        "evidence.html",
        status,
        configured=True,
        systems=await _systems_in_scope(request),
        public_key=public_pem(key).decode(),
        key_sha256=fingerprint(key),
        error=error,
        form=form or {},
    )


@requires(*EVIDENCE_ROLES, login_redirect=True)
async def evidence_page(request: Request) -> Response:
    return await _render(request, _exports(request))


def _period(form: Mapping[str, str], now: dt.datetime) -> Period:
    """The form's dates through the evidence package's own checks (EvidenceError if bad)."""
    start = parse_when(form.get("from", "")[:64], location="from")
    end = parse_when(form.get("to", "")[:64], location="to")
    return check_period(start, end, now)


def download_name(system_id: str, period: Period) -> str:
    """`evidence-<system>-<from>-<to>.tar` with only safe characters (a header value)."""
    system = _NAME_PART.sub("_", system_id).strip("._")[:64] or "system"
    start, end = period.start.date().isoformat(), period.end.date().isoformat()
    return f"evidence-{system}-{start}-{end}.tar"


def _sweep(directory: Path, now_s: float) -> None:
    """Remove bundles a dead process left behind (an export in progress holds the lock)."""
    for path in directory.glob("*.tar"):
        try:
            if now_s - path.stat().st_mtime > STALE_S:
                path.unlink()
        except OSError:
            continue


def _run_export(
    exports: EvidenceExports,
    system_id: str,
    period: Period,
    raw: bool,
    actor: str,
    now: dt.datetime,
) -> BinaryIO:
    """Export on this (worker) thread with a Store connection of its own; return the bundle
    opened for reading and already unlinked."""
    directory = exports.work_dir
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep(directory, time.time())
    out = directory / f"{secrets.token_hex(8)}.tar"
    store = exports.open_store()
    try:
        export_bundle(
            store,
            system_id,
            period.start,
            period.end,
            out,
            config=exports.config,
            key=exports.key(),
            regimes=exports.regimes,
            raw_events=raw,
            actor=actor,
            now=lambda: now,
        )
        fh = out.open("rb")
    finally:
        store.close()
        out.unlink(missing_ok=True)
    return fh


async def _stream(fh: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(fh.read, _CHUNK):
            yield chunk
    finally:
        fh.close()


@requires(*EVIDENCE_ROLES, login_redirect=True)
async def evidence_export(request: Request) -> Response:
    exports = _exports(request)
    if exports is None:
        _count_error(request, "not_configured")
        return await _render(request, None)
    form = await form_fields(request)
    kept = {k: form.get(k, "")[:64] for k in ("system", "from", "to", "raw_events")}
    t = translator(request)
    principal: Principal = request.state.principal
    system_id = form.get("system", "").strip()
    known = {s.id for s in await _systems_in_scope(request)}
    if system_id not in known:
        # Outside the scope answers as an unknown system: the scope is not revealed.
        _count_error(request, "unknown_system")
        return await _render(request, exports, 404, error=t("evidence.unknown_system"), form=kept)
    now = _now(request)
    try:
        period = _period(form, now)
    except EvidenceError as exc:
        _count_error(request, "bad_period")
        message = f"{t('evidence.bad_period')} {exc}"
        return await _render(request, exports, 400, error=message, form=kept)
    if exports.lock.locked():
        _count_error(request, "busy")
        return await _render(request, exports, 503, error=t("evidence.busy"), form=kept)
    raw = form.get("raw_events", "") in ("1", "on", "true")
    async with exports.lock:
        try:
            fh = await asyncio.to_thread(
                _run_export, exports, system_id, period, raw, principal.name, now
            )
        except EvidenceError as exc:
            _count_error(request, "export_refused")
            message = f"{t('evidence.failed')} {exc}"
            return await _render(request, exports, 400, error=message, form=kept)
        except (CanhGacError, OSError, ValueError):
            log.exception("evidence export failed", extra={"fields": {"system": system_id}})
            _count_error(request, "export_failed")
            return await _render(request, exports, 500, error=t("evidence.error"), form=kept)
    size = os.fstat(fh.fileno()).st_size
    name = download_name(system_id, period)
    return StreamingResponse(
        _stream(fh),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
