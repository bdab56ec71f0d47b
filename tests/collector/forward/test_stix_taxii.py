"""The STIX destination against the TAXII receiver over a real TLS socket (uvicorn, test CA)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.forward.minimise import MinimisePolicy
from collector.forward.model import DeliveryError
from collector.forward.receiver.taxii import COLLECTION_ID, OBJECTS_FILE, taxii_routes
from collector.forward.stix import StixTaxiiSettings, build
from tests.collector.forward.stix_check import assert_valid_stix
from tests.collector.forward.test_stix import item, known_alert, known_incident
from tests.collector.forward.tls_support import PkiFiles, make_pki
from tests.uvicorn_thread import serving

TOKEN = "s3cret-token"


def _server(app: ASGIApp, pki: PkiFiles) -> AbstractContextManager[int]:
    """The app over TLS with the test CA's server certificate; the block gets the port."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        log_level="warning",
    )
    return serving(config)


def _recording_app(data_dir: Path, seen: list[str]) -> ASGIApp:
    """The receiver's TAXII routes, recording each request's Authorization header."""
    app = Starlette(routes=list(taxii_routes(data_dir)))

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            seen.append(headers.get(b"authorization", b"").decode())
        await app(scope, receive, send)

    return record


@pytest.fixture
def pki(tmp_path: Path) -> PkiFiles:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def served(tmp_path: Path, pki: PkiFiles) -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    with _server(_recording_app(tmp_path / "receiver", seen), pki) as port:
        yield port, seen


def _settings(port: int, tmp_path: Path, pki: PkiFiles, **changes: object) -> StixTaxiiSettings:
    secret = tmp_path / "taxii.secret"
    secret.write_text(TOKEN + "\n")
    fields: dict[str, object] = {
        "api_root": f"https://127.0.0.1:{port}/api1/",
        "collection_id": COLLECTION_ID,
        "identity_name": "Tỉnh Lạng Sơn",
        "auth": "bearer",
        "secrets_file": secret,
        "ca_file": pki.ca,
        **changes,
    }
    return StixTaxiiSettings.model_validate(fields)


async def test_delivers_over_tls_and_a_retry_stores_nothing_twice(
    served: tuple[int, list[str]], tmp_path: Path, pki: PkiFiles
) -> None:
    port, seen = served
    destination = build("stix", _settings(port, tmp_path, pki), state_dir=tmp_path)
    batch = [
        item("alert", "01JDALERT0000000000000001", alert=known_alert()),
        item("incident", "INC-2026-0001", incident=known_incident()),
        item(
            "incident",
            "INC-9",
            incident=known_incident(id="INC-9", confidential=True),
        ),
    ]
    try:
        assert await destination.send(batch) == {
            "01JDALERT0000000000000001",
            "INC-2026-0001",
            "INC-9",
        }
        stored = (tmp_path / "receiver" / OBJECTS_FILE).read_text().splitlines()
        assert await destination.send(batch[:2]) == {"01JDALERT0000000000000001", "INC-2026-0001"}
    finally:
        await destination.close()
    assert (tmp_path / "receiver" / OBJECTS_FILE).read_text().splitlines() == stored
    objects = [json.loads(line)["object"] for line in stored]
    assert_valid_stix({"objects": objects})
    # The confidential incident went as a summary (the default policy), the address stayed home.
    assert "10.0.0.5" not in json.dumps(objects)
    assert seen
    assert set(seen) == {f"Bearer {TOKEN}"}


async def test_withheld_items_are_accepted_without_a_request(
    served: tuple[int, list[str]], tmp_path: Path, pki: PkiFiles
) -> None:
    port, seen = served
    destination = build(
        "stix",
        _settings(port, tmp_path, pki),
        state_dir=tmp_path,
        policy=MinimisePolicy(confidential_incidents="withhold"),
    )
    secret = item("incident", "INC-9", incident=known_incident(id="INC-9", confidential=True))
    assert await destination.send([secret]) == {"INC-9"}
    await destination.close()
    assert seen == []


async def test_untrusted_server_is_a_tls_failure(
    served: tuple[int, list[str]], tmp_path: Path, pki: PkiFiles
) -> None:
    port, _ = served
    other = make_pki(tmp_path / "other")
    destination = build(
        "stix", _settings(port, tmp_path, pki, ca_file=other.ca), state_dir=tmp_path
    )
    with pytest.raises(DeliveryError) as failure:
        await destination.send([item("alert", "a", alert=known_alert())])
    await destination.close()
    assert failure.value.reason == "tls"


async def test_refused_connection_is_retried_later(tmp_path: Path, pki: PkiFiles) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    destination = build("stix", _settings(port, tmp_path, pki), state_dir=tmp_path)
    with pytest.raises(DeliveryError) as failure:
        await destination.send([item("alert", "a", alert=known_alert())])
    await destination.close()
    assert (failure.value.reason, failure.value.permanent) == ("refused", False)
