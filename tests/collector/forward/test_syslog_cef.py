"""The syslog/CEF destination against a real TLS listener on loopback: exact bytes, escaping,
reconnection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canhgac import __version__
from collector.forward.minimise import MinimisePolicy
from collector.forward.model import DeliveryError
from collector.forward.syslog_cef import (
    SyslogCefSettings,
    build,
    cef,
    escape_extension,
    escape_header,
)
from tests.collector.forward.test_stix import item, known_alert, known_incident
from tests.collector.forward.tls_support import PkiFiles, make_pki


class SiemListener:
    """A TLS syslog listener: reads octet-counted frames, can drop a connection."""

    def __init__(self, pki: PkiFiles) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.frames: list[bytes] = []
        self.connections = 0
        self.received = asyncio.Condition()
        self.drop_after: int | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        count = 0
        try:
            while True:
                length = await reader.readuntil(b" ")
                body = await reader.readexactly(int(length[:-1]))
                async with self.received:
                    self.frames.append(length + body)
                    self.received.notify_all()
                count += 1
                if self.drop_after is not None and count >= self.drop_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def wait_for(self, n: int) -> list[bytes]:
        async with self.received:
            await asyncio.wait_for(self.received.wait_for(lambda: len(self.frames) >= n), 10)
        return self.frames


@pytest.fixture
def pki(tmp_path: Path) -> PkiFiles:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def siem(pki: PkiFiles) -> AsyncIterator[SiemListener]:
    listener = SiemListener(pki)
    await listener.start()
    yield listener
    await listener.stop()


def settings(port: int, pki: PkiFiles, **changes: object) -> SyslogCefSettings:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "ca_file": pki.ca,
        **changes,
    }
    return SyslogCefSettings.model_validate(fields)


def test_escaping() -> None:
    assert escape_header("a|b\\c\nd") == "a\\|b\\\\c d"
    assert escape_extension("a=b\\c\nd\re|f") == "a\\=b\\\\c\\nd\\re|f"
    assert cef("r|1", "t", 3, [("msg", "x=1"), ("cs1", "")]) == (
        f"CEF:0|Canh Gac|collector|{__version__}|r\\|1|t|3|msg=x\\=1"
    )


ALERT_FRAME = (
    "<107>1 2025-11-30T10:53:20.123456Z lang-son canhgac - alert - "
    f"CEF:0|Canh Gac|collector|{__version__}|ssh-brute-force|SSH brute force|8|"
    "rt=1764500000123 start=1764499940123 end=1764499999123 cnt=12 cat=unauthorized_access "
    "src=8.8.8.8 dhost=web01 dproc=/usr/sbin/sshd msg=12 failed logins from 8.8.8.8 to "
    "[internal] externalId=01JDALERT0000000000000001 dvchost=lang-son cs1Label=system "
    "cs1=cong-dich-vu-cong cn1Label=systemLevel cn1=3 cs2Label=incident cs2=INC-2026-0001 "
    "cs3Label=mitreTechniques cs3=T1110"
)


async def test_exact_bytes_of_an_alert_and_an_incident(
    siem: SiemListener, pki: PkiFiles, tmp_path: Path
) -> None:
    destination = build("siem", settings(siem.port, pki), state_dir=tmp_path, hostname="lang-son")
    incident = known_incident(
        title="Portal | defaced",
        description="line one\nkey=value \\ end",
    )
    batch = [
        item("alert", "01JDALERT0000000000000001", alert=known_alert()),
        item("incident", "INC-2026-0001", incident=incident),
    ]
    try:
        assert await destination.send(batch) == {"01JDALERT0000000000000001", "INC-2026-0001"}
        frames = await siem.wait_for(2)
    finally:
        await destination.close()
    alert_bytes = ALERT_FRAME.encode()
    assert frames[0] == str(len(alert_bytes)).encode() + b" " + alert_bytes
    stamp = "2025-11-30T10:53:20.123456Z"
    incident_text = (
        f"<107>1 {stamp} lang-son canhgac - incident - "
        f"CEF:0|Canh Gac|collector|{__version__}|incident|Portal \\| defaced|8|"
        "start=1796029200000 cat=unauthorized_access msg=line one\\nkey\\=value \\\\ end "
        "externalId=INC-2026-0001 outcome=not_handled cs1Label=system cs1=cong-dich-vu-cong "
        "cn1Label=systemLevel cn1=3 cs4Label=publicIps cs4=8.8.8.8 cs5Label=domains "
        "cs5=dichvucong.langson.gov.vn cs6Label=alerts cs6=01JDALERT0000000000000001"
    ).encode()
    assert frames[1] == str(len(incident_text)).encode() + b" " + incident_text
    assert siem.connections == 1


async def test_reconnects_after_the_siem_drops_the_connection(
    siem: SiemListener, pki: PkiFiles, tmp_path: Path
) -> None:
    siem.drop_after = 1
    destination = build("siem", settings(siem.port, pki), state_dir=tmp_path)
    first = item("alert", "a1", alert=known_alert(id="a1"))
    second = item("alert", "a2", alert=known_alert(id="a2"))
    try:
        assert await destination.send([first]) == {"a1"}
        await siem.wait_for(1)
        for _ in range(500):  # until this side has seen the close
            if not destination.connected:
                break
            await asyncio.sleep(0.01)
        assert await destination.send([second]) == {"a2"}
        frames = await siem.wait_for(2)
    finally:
        await destination.close()
    assert b"externalId=a2 " in frames[1]
    assert (siem.connections, destination.connections) == (2, 2)


async def test_listener_down_then_up(pki: PkiFiles, tmp_path: Path) -> None:
    siem = SiemListener(pki)
    await siem.start()
    port = siem.port
    await siem.stop()
    destination = build("siem", settings(port, pki), state_dir=tmp_path)
    batch = [item("alert", "a1", alert=known_alert(id="a1"))]
    with pytest.raises(DeliveryError) as failure:
        await destination.send(batch)
    assert (failure.value.reason, failure.value.permanent) == ("refused", False)
    await siem.start(port)
    try:
        assert await destination.send(batch) == {"a1"}
        assert len(await siem.wait_for(1)) == 1
    finally:
        await destination.close()
        await siem.stop()


async def test_untrusted_listener_is_refused(siem: SiemListener, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    destination = build("siem", settings(siem.port, other), state_dir=tmp_path)
    with pytest.raises(DeliveryError) as failure:
        await destination.send([item("alert", "a1", alert=known_alert(id="a1"))])
    await destination.close()
    assert failure.value.reason == "tls"
    assert siem.frames == []


async def test_withheld_incident_sends_nothing(
    siem: SiemListener, pki: PkiFiles, tmp_path: Path
) -> None:
    destination = build(
        "siem",
        settings(siem.port, pki),
        state_dir=tmp_path,
        policy=MinimisePolicy(confidential_incidents="withhold"),
    )
    secret = item("incident", "I9", incident=known_incident(id="I9", confidential=True))
    assert await destination.send([secret]) == {"I9"}
    await destination.close()
    assert destination.connections == 0
