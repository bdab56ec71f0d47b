"""The demo receiver over real sockets and mutual TLS, fed by the national destination."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from collector.forward.minimise import MinimisePolicy
from collector.forward.model import DeliveryError, Outgoing
from collector.forward.national import NationalJsonDestination, NationalJsonSettings
from collector.forward.receiver.app import build_receiver
from collector.forward.receiver.pki import ReceiverPki, make_receiver_pki
from tests.collector.forward.test_national import item, known_alert, known_incident

pytestmark = pytest.mark.integration


@dataclass
class Running:
    url: str
    pki: ReceiverPki
    data_dir: Path


async def serve(pki: ReceiverPki, data_dir: Path) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(
        build_receiver(data_dir),
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca_file),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "receiver did not start"
        await asyncio.sleep(0.02)  # uvicorn has no start event to await
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Running]:
    pki = make_receiver_pki(tmp_path / "pki", ["127.0.0.1"], "province-a")
    server, task, port = await serve(pki, tmp_path / "data")
    yield Running(f"https://127.0.0.1:{port}/national/v1/reports", pki, tmp_path / "data")
    server.should_exit = True
    await task


def destination(r: Running, **changes: Path) -> NationalJsonDestination:
    files = {
        "ca_file": r.pki.ca_file,
        "client_cert_file": r.pki.client_cert,
        "client_key_file": r.pki.client_key,
    }
    files.update(changes)
    settings = NationalJsonSettings(url=r.url, timeout_s=5, **files)
    return NationalJsonDestination(
        "national", settings, collector="province-a", policy=MinimisePolicy()
    )


def client(r: Running) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=str(r.pki.ca_file))
    context.load_cert_chain(str(r.pki.client_cert), str(r.pki.client_key))
    return httpx.AsyncClient(verify=context)


async def test_reports_arrive_once_and_a_repeat_is_accepted_as_known(receiver: Running) -> None:
    dest = destination(receiver)
    alert = Outgoing(item("alert", "al-1"), alert=known_alert())
    incident = Outgoing(item("incident", "INC-1"), incident=known_incident())
    assert await dest.send([alert, incident]) == {"al-1", "INC-1"}
    assert await dest.send([alert]) == {"al-1"}  # 409: already there, so accepted
    await dest.close()
    async with client(receiver) as c:
        listing = (await c.get(receiver.url)).json()
    assert [(r["kind"], r["id"]) for r in listing["reports"]] == [
        ("alert", "al-1"),
        ("incident", "INC-1"),
    ]
    assert listing["duplicates"] == 1
    lines = (receiver.data_dir / "national.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["al-1", "INC-1"]


async def test_a_restarted_receiver_still_knows_what_it_has(tmp_path: Path) -> None:
    pki = make_receiver_pki(tmp_path / "pki", ["127.0.0.1"], "p")
    out = Outgoing(item("alert", "al-1"), alert=known_alert())
    for _ in range(2):
        server, task, port = await serve(pki, tmp_path / "data")
        r = Running(f"https://127.0.0.1:{port}/national/v1/reports", pki, tmp_path / "data")
        dest = destination(r)
        assert await dest.send([out]) == {"al-1"}
        await dest.close()
        async with client(r) as c:
            listing = (await c.get(r.url)).json()
        server.should_exit = True
        await task
    assert len(listing["reports"]) == 1
    assert listing["duplicates"] == 1


async def test_a_sender_without_a_client_certificate_is_refused(receiver: Running) -> None:
    context = ssl.create_default_context(cafile=str(receiver.pki.ca_file))
    async with httpx.AsyncClient(verify=context) as c:
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            await c.post(receiver.url, json={"id": "x"})


async def test_a_receiver_the_ca_does_not_vouch_for_is_refused(
    receiver: Running, tmp_path: Path
) -> None:
    other = make_receiver_pki(tmp_path / "other", ["127.0.0.1"], "p")
    dest = destination(receiver, ca_file=other.ca_file)
    with pytest.raises(DeliveryError) as caught:
        await dest.send([Outgoing(item("alert", "al-1"), alert=known_alert())])
    assert caught.value.reason == "tls"
    assert not caught.value.permanent
    await dest.close()


async def test_bad_reports_are_refused_with_the_reason_and_counted(receiver: Running) -> None:
    async with client(receiver) as c:
        not_json = await c.post(receiver.url, content=b"{nope")
        wrong = await c.post(receiver.url, json={"schema_version": "1", "kind": "alert"})
        listing = (await c.get(receiver.url)).json()
    assert not_json.status_code == 400
    assert "not JSON" in not_json.json()["error"]
    assert wrong.status_code == 400
    assert "schema" in wrong.json()["error"]
    assert listing == {"reports": [], "duplicates": 0, "rejected": 2}


async def test_a_closed_receiver_is_a_retryable_failure(tmp_path: Path) -> None:
    pki = make_receiver_pki(tmp_path / "pki", ["127.0.0.1"], "p")
    r = Running("https://127.0.0.1:9/national/v1/reports", pki, tmp_path)
    dest = destination(r)
    with pytest.raises(DeliveryError) as caught:
        await dest.send([Outgoing(item("alert", "al-1"), alert=known_alert())])
    assert caught.value.reason == "refused"
    assert not caught.value.permanent
    await dest.close()
