"""The receiver's HTTP application (starlette): national JSON reports and TAXII routes.

POST /national/v1/reports takes one report (collector/forward/national.py), checks it against
the published schema, keeps the first report of each (kind, id) in national.jsonl (flushed to
disk before answering, so an accepted report survives a crash) and answers 201, or 409 for a
report it already has. GET /national/v1/reports lists what it kept, with counts of duplicates
and refusals. Bad input is answered 400 with the reason and counted; the receiver keeps serving.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from collector.forward.national import schema_errors

log = logging.getLogger("canhgac.receiver")

NATIONAL_FILE = "national.jsonl"
MAX_BODY = 1024 * 1024


@dataclass
class NationalInbox:
    """What the receiver has kept, loaded from and appended to data_dir/national.jsonl."""

    data_dir: Path
    seen: set[tuple[str, str]] = field(default_factory=set)
    duplicates: int = 0
    rejected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for report in self.reports():
            self.seen.add((str(report["kind"]), str(report["id"])))

    @property
    def path(self) -> Path:
        return self.data_dir / NATIONAL_FILE

    def reports(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def keep(self, report: dict[str, Any]) -> bool:
        """Append a new report durably; False when its (kind, id) was kept before."""
        key = (str(report["kind"]), str(report["id"]))
        with self._lock:
            if key in self.seen:
                self.duplicates += 1
                return False
            line = json.dumps(report, ensure_ascii=False, sort_keys=True) + "\n"
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.seen.add(key)
            return True


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes: refused as soon as that is
    known (the declared length, or the bytes read so far), never read whole into memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refuse(inbox: NationalInbox, status: int, reason: str) -> JSONResponse:
    inbox.rejected += 1
    log.warning("report refused: %s", reason)
    return JSONResponse({"error": reason}, status_code=status)


def national_routes(inbox: NationalInbox) -> list[BaseRoute]:
    async def post_report(request: Request) -> JSONResponse:
        body = await bounded_body(request, MAX_BODY)
        if body is None:
            return _refuse(inbox, 413, "report larger than 1 MiB")
        try:
            report = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _refuse(inbox, 400, f"not JSON: {exc}")
        if not isinstance(report, dict):
            return _refuse(inbox, 400, "a report is a JSON object")
        errors = schema_errors(report)
        if errors:
            return _refuse(inbox, 400, "schema: " + "; ".join(errors[:5]))
        key = request.headers.get("idempotency-key")
        if key is not None and key != report["id"]:
            return _refuse(inbox, 400, "Idempotency-Key differs from the report id")
        if not inbox.keep(report):
            return JSONResponse({"id": report["id"], "status": "duplicate"}, status_code=409)
        return JSONResponse({"id": report["id"], "status": "accepted"}, status_code=201)

    async def list_reports(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "reports": inbox.reports(),
                "duplicates": inbox.duplicates,
                "rejected": inbox.rejected,
            }
        )

    return [
        Route("/national/v1/reports", post_report, methods=["POST"]),
        Route("/national/v1/reports", list_reports, methods=["GET"]),
    ]


def _taxii_routes(data_dir: Path) -> list[BaseRoute]:
    """The TAXII 2.1 collection routes (receiver/taxii.py) when that module is present."""
    try:
        taxii = importlib.import_module("collector.forward.receiver.taxii")
    except ImportError:
        log.warning("TAXII routes not available in this build")
        return []
    routes: list[BaseRoute] = list(taxii.taxii_routes(data_dir))
    return routes


def build_receiver(data_dir: Path) -> Starlette:
    inbox = NationalInbox(data_dir)
    app = Starlette(routes=[*national_routes(inbox), *_taxii_routes(data_dir)])
    app.state.inbox = inbox
    return app
