"""A minimal TAXII 2.1 server for the demo receiver: one API root, one writable collection.

Routes (TAXII 2.1 sections 4-5): discovery `GET /taxii2/`, API root `GET /api1/`,
`GET /api1/collections/`, `GET /api1/collections/{id}/`, `GET|POST /api1/collections/{id}/
objects/` and `GET /api1/status/{id}/`. Requests must accept, and POSTs must carry,
`application/taxii+json;version=2.1`.

A POST takes an envelope (`{"objects": [...]}`; a STIX bundle is taken too); each object is
parsed by the `stix2` package and refused on its own when invalid. Objects are kept once per
(id, version), version being `modified` (or `created`, or "" for cyber observables), in
data_dir/taxii-objects.jsonl, flushed to disk before the answer, so a retry after a lost answer
stores nothing twice. The answer is a complete status resource listing successes and failures
(a duplicate is a success). Bad input is answered with a TAXII error and counted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stix2
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from collector.forward.receiver.app import bounded_body

log = logging.getLogger("canhgac.receiver")

MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
API_ROOT = "/api1/"
COLLECTION_ID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
OBJECTS_FILE = "taxii-objects.jsonl"
MAX_CONTENT_LENGTH = 10 * 1024 * 1024
MAX_STATUSES = 1000


class TaxiiResponse(JSONResponse):
    media_type = MEDIA_TYPE


def _error(status: int, title: str, description: str = "") -> TaxiiResponse:
    body = {"title": title, "http_status": str(status)}
    if description:
        body["description"] = description
    return TaxiiResponse(body, status_code=status)


def _version(obj: dict[str, Any]) -> str:
    return str(obj.get("modified") or obj.get("created") or "")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TaxiiCollection:
    """The stored objects, loaded from and appended to data_dir/taxii-objects.jsonl."""

    data_dir: Path
    seen: set[tuple[str, str]] = field(default_factory=set)
    statuses: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    rejected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for entry in self.entries():
            self.seen.add((entry["object"]["id"], _version(entry["object"])))

    @property
    def path(self) -> Path:
        return self.data_dir / OBJECTS_FILE

    def entries(self) -> list[dict[str, Any]]:
        """Stored objects with the time they were added: {"added": ..., "object": ...}."""
        if not self.path.exists():
            return []
        lines = self.path.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def add(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store the new ones durably; returns the versions that were new."""
        added = _now()
        with self._lock:
            fresh = []
            for obj in objects:
                key = (obj["id"], _version(obj))
                if key not in self.seen:
                    self.seen.add(key)
                    fresh.append(obj)
            if fresh:
                with self.path.open("a", encoding="utf-8") as f:
                    for obj in fresh:
                        entry = {"added": added, "object": obj}
                        f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            return fresh

    def record_status(self, status: dict[str, Any]) -> None:
        with self._lock:
            self.statuses[status["id"]] = status
            while len(self.statuses) > MAX_STATUSES:
                self.statuses.popitem(last=False)


def _accepts_taxii(request: Request) -> bool:
    accept = request.headers.get("accept", "").replace(" ", "").lower()
    return any(part in (MEDIA_TYPE, "application/taxii+json", "*/*") for part in accept.split(","))


def _check_object(obj: Any) -> str:
    """Why `obj` is not a valid STIX 2.1 object, or "" when it is."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return "not a STIX object with an id"
    try:
        stix2.parse(obj, allow_custom=False, version="2.1")
    except Exception as exc:  # noqa: BLE001  # stix2 raises many unrelated types on bad input
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return ""


def taxii_routes(data_dir: Path) -> list[Route]:
    """The TAXII routes, storing into data_dir (see the module docstring)."""
    store = TaxiiCollection(data_dir)
    collection = {
        "id": COLLECTION_ID,
        "title": "Canh Gac demo collection",
        "description": "Alerts and incidents forwarded by Canh Gac collectors",
        "can_read": True,
        "can_write": True,
        "media_types": [STIX_MEDIA_TYPE],
    }

    def refuse(status: int, title: str, description: str = "") -> TaxiiResponse:
        store.rejected += 1
        log.warning("TAXII request refused: %s %s", title, description)
        return _error(status, title, description)

    async def discovery(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        root = str(request.base_url).rstrip("/") + API_ROOT
        return TaxiiResponse(
            {"title": "Canh Gac demo receiver", "default": root, "api_roots": [root]}
        )

    async def api_root(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        return TaxiiResponse(
            {
                "title": "Canh Gac demo API root",
                "versions": [MEDIA_TYPE],
                "max_content_length": MAX_CONTENT_LENGTH,
            }
        )

    async def collections(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        return TaxiiResponse({"collections": [collection]})

    async def one_collection(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        if request.path_params["cid"] != COLLECTION_ID:
            return refuse(404, "Collection not found")
        return TaxiiResponse(collection)

    async def get_objects(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        if request.path_params["cid"] != COLLECTION_ID:
            return refuse(404, "Collection not found")
        wanted_ids = set(filter(None, request.query_params.get("match[id]", "").split(",")))
        wanted_types = set(filter(None, request.query_params.get("match[type]", "").split(",")))
        objects = [
            e["object"]
            for e in store.entries()
            if (not wanted_ids or e["object"]["id"] in wanted_ids)
            and (not wanted_types or e["object"]["type"] in wanted_types)
        ]
        return TaxiiResponse({"more": False, "objects": objects})

    async def post_objects(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        if request.path_params["cid"] != COLLECTION_ID:
            return refuse(404, "Collection not found")
        content_type = request.headers.get("content-type", "").replace(" ", "").lower()
        if content_type not in (MEDIA_TYPE, "application/taxii+json"):
            return refuse(415, "Unsupported Media Type", f"use {MEDIA_TYPE}")
        body = await bounded_body(request, MAX_CONTENT_LENGTH)
        if body is None:
            return refuse(413, "Request Entity Too Large")
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return refuse(400, "Bad Request", f"not JSON: {exc}")
        if not isinstance(envelope, dict) or not isinstance(envelope.get("objects"), list):
            return refuse(400, "Bad Request", "an envelope is an object with an objects list")
        good, failures = [], []
        for obj in envelope["objects"]:
            problem = _check_object(obj)
            if problem:
                oid = obj.get("id", "") if isinstance(obj, dict) else ""
                version = _version(obj) if isinstance(obj, dict) else ""
                failures.append({"id": str(oid), "version": version, "message": problem})
            else:
                good.append(obj)
        store.add(good)
        if failures:
            store.rejected += 1
        status = {
            "id": str(uuid.uuid4()),
            "status": "complete",
            "request_timestamp": _now(),
            "total_count": len(good) + len(failures),
            "success_count": len(good),
            "successes": [{"id": o["id"], "version": _version(o)} for o in good],
            "failure_count": len(failures),
            "failures": failures,
            "pending_count": 0,
        }
        store.record_status(status)
        return TaxiiResponse(status, status_code=202)

    async def get_status(request: Request) -> TaxiiResponse:
        if not _accepts_taxii(request):
            return refuse(406, "Not Acceptable")
        status = store.statuses.get(request.path_params["sid"])
        if status is None:
            return refuse(404, "Status not found")
        return TaxiiResponse(status)

    objects_path = API_ROOT + "collections/{cid}/objects/"
    return [
        Route("/taxii2/", discovery, methods=["GET"]),
        Route(API_ROOT, api_root, methods=["GET"]),
        Route(API_ROOT + "collections/", collections, methods=["GET"]),
        Route(API_ROOT + "collections/{cid}/", one_collection, methods=["GET"]),
        Route(objects_path, get_objects, methods=["GET"]),
        Route(objects_path, post_objects, methods=["POST"]),
        Route(API_ROOT + "status/{sid}/", get_status, methods=["GET"]),
    ]
