"""The demo receiver's TAXII 2.1 routes, through Starlette's test client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from collector.forward.minimise import MinimisePolicy
from collector.forward.receiver.taxii import COLLECTION_ID, MEDIA_TYPE, OBJECTS_FILE, taxii_routes
from collector.forward.stix import envelope, objects_for
from tests.collector.forward.stix_check import assert_valid_stix
from tests.collector.forward.test_stix import SETTINGS, item, known_alert, known_incident

HEADERS = {"Accept": MEDIA_TYPE}
OBJECTS = f"/api1/collections/{COLLECTION_ID}/objects/"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(Starlette(routes=list(taxii_routes(tmp_path))))


def _envelope() -> dict[str, Any]:
    per_item = {
        "a": objects_for(item("alert", "a", alert=known_alert()), SETTINGS, MinimisePolicy()),
        "i": objects_for(
            item("incident", "i", incident=known_incident()), SETTINGS, MinimisePolicy()
        ),
    }
    sent = envelope({k: v for k, v in per_item.items() if v is not None})
    assert_valid_stix(sent)
    return sent


def post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post(
        OBJECTS,
        content=json.dumps(body).encode(),
        headers={**HEADERS, "Content-Type": MEDIA_TYPE, **headers},
    )


def test_discovery_root_and_collections(client: TestClient) -> None:
    discovery = client.get("/taxii2/", headers=HEADERS)
    assert discovery.status_code == 200
    assert discovery.headers["content-type"].startswith("application/taxii+json")
    assert discovery.json()["api_roots"] == ["http://testserver/api1/"]
    root = client.get("/api1/", headers=HEADERS).json()
    assert root["versions"] == [MEDIA_TYPE]
    collections = client.get("/api1/collections/", headers=HEADERS).json()["collections"]
    assert [(c["id"], c["can_write"]) for c in collections] == [(COLLECTION_ID, True)]
    one = client.get(f"/api1/collections/{COLLECTION_ID}/", headers=HEADERS)
    assert one.json()["id"] == COLLECTION_ID
    assert client.get("/api1/collections/nope/", headers=HEADERS).status_code == 404


def test_post_stores_each_version_once_and_answers_a_status(
    client: TestClient, tmp_path: Path
) -> None:
    sent = _envelope()
    first = post(client, sent)
    assert first.status_code == 202
    status = first.json()
    assert (status["status"], status["success_count"], status["failure_count"]) == (
        "complete",
        len(sent["objects"]),
        0,
    )
    again = post(client, sent).json()
    assert again["success_count"] == len(sent["objects"])  # a duplicate is a success
    lines = (tmp_path / OBJECTS_FILE).read_text().splitlines()
    assert len(lines) == len(sent["objects"])
    stored = client.get(OBJECTS, headers=HEADERS).json()
    assert sorted(o["id"] for o in stored["objects"]) == sorted(o["id"] for o in sent["objects"])
    sightings = client.get(OBJECTS + "?match[type]=sighting", headers=HEADERS).json()
    assert [o["type"] for o in sightings["objects"]] == ["sighting"]
    polled = client.get(f"/api1/status/{status['id']}/", headers=HEADERS)
    assert polled.json() == status


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    sent = _envelope()
    post(TestClient(Starlette(routes=list(taxii_routes(tmp_path)))), sent)
    restarted = TestClient(Starlette(routes=list(taxii_routes(tmp_path))))
    post(restarted, sent)
    assert len((tmp_path / OBJECTS_FILE).read_text().splitlines()) == len(sent["objects"])


def test_invalid_objects_fail_alone(client: TestClient) -> None:
    sent = _envelope()
    bad = {"type": "indicator", "id": "indicator--2f8c3d1a-4b5e-4c6d-8e7f-9a0b1c2d3e4f"}
    status = post(client, {"objects": [*sent["objects"], bad, "text"]}).json()
    assert status["success_count"] == len(sent["objects"])
    assert [f["id"] for f in status["failures"]] == [bad["id"], ""]
    assert all(f["message"] for f in status["failures"])


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"{not json", {}, 400),
        (b'{"objects": 3}', {}, 400),
        (b'{"objects": []}', {"Content-Type": "application/json"}, 415),
        (b'{"objects": []}', {"Accept": "text/html"}, 406),
    ],
)
def test_bad_requests_get_taxii_errors(
    client: TestClient, body: bytes, headers: dict[str, str], code: int
) -> None:
    answer = client.post(
        OBJECTS, content=body, headers={**HEADERS, "Content-Type": MEDIA_TYPE, **headers}
    )
    assert answer.status_code == code
    assert answer.json()["http_status"] == str(code)
    # The receiver keeps serving.
    assert client.get("/api1/", headers=HEADERS).status_code == 200


def test_unknown_status_is_404(client: TestClient) -> None:
    assert client.get("/api1/status/nope/", headers=HEADERS).status_code == 404
