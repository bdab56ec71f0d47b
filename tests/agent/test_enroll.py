"""The agent side of enrollment against a real collector: `enroll`, renewal, and the words it
uses when TLS fails (unknown CA, name mismatch, expired or refused certificate)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import socket
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent import cli
from agent.channel import STREAM_METHOD, make_channel
from agent.config import AgentConfig
from agent.enroll.client import enroll, explain
from agent.enroll.identity import ClientIdentity, IdentityFiles
from agent.enroll.keys import key_pem, new_key
from agent.enroll.renewer import CertificateRenewer
from canhgac.config import parse_model
from canhgac.errors import CanhGacError, EnrollmentError, TlsError
from canhgac.v1 import agent_pb2
from collector.app import CollectorApp
from collector.enroll.issuer import CertificateIssuer
from collector.pki import create_ca
from tests.collector.enroll.helpers import make_token, running_collector

pytestmark = pytest.mark.integration

DAY = dt.timedelta(days=1)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CollectorApp]:
    async with running_collector(tmp_path / "c") as running:
        yield running


def agent_config(app: CollectorApp, tmp_path: Path, **collector: Any) -> AgentConfig:
    settings = {
        "address": f"localhost:{app.grpc_port}",
        "enroll_address": f"localhost:{app.enroll_port}",
        "ca_file": str(app.config.state_dir / "pki" / "ca.crt"),
        **collector,
    }
    return parse_model(
        AgentConfig,
        {"state_dir": str(tmp_path / "agent"), "collector": settings, "sources": {}},
        source="agent.yaml",
    )


def write_config(config: AgentConfig, path: Path) -> str:
    import yaml

    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return str(path)


async def enrolled(app: CollectorApp, config: AgentConfig, agent_id: str = "") -> ClientIdentity:
    token = await make_token(app, agent_id=agent_id)
    result = await enroll(config.collector, IdentityFiles.for_config(config), token, "web-07")
    return result.identity


# --- enroll ----------------------------------------------------------------------------------


async def test_enroll_command_writes_key_and_certificate(
    app: CollectorApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = agent_config(app, tmp_path)
    path = write_config(config, tmp_path / "agent.yaml")
    token = await make_token(app, system_id="portal")
    argv = ["enroll", "--token", token, "--hostname", "web-07.tinh.gov.vn", "--config", path]
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("enrolled as web-07, system portal\n")
    assert token not in out
    files = IdentityFiles.for_config(config)
    assert files.cert_file == tmp_path / "agent" / "agent.crt"
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    identity = files.load()
    assert identity.agent_id == "web-07"
    record = await app.store.run(app.store.store.get_agent, "web-07")
    assert record is not None
    assert record.cert_serial == identity.serial
    assert cli.enrollment_problem(config) is None  # the shipper will connect


async def test_enroll_reads_the_token_from_stdin(
    app: CollectorApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = agent_config(app, tmp_path)
    path = write_config(config, tmp_path / "agent.yaml")
    monkeypatch.setattr("sys.stdin", io.StringIO(await make_token(app) + "\n"))
    argv = ["enroll", "--token-file", "-", "--hostname", "db", "--config", path]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert IdentityFiles.for_config(config).load().agent_id == "db"


async def test_a_refused_token_says_why(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path)
    token = await make_token(app)
    await enroll(config.collector, IdentityFiles.for_config(config), token, "a")
    with pytest.raises(EnrollmentError) as info:
        await enroll(
            config.collector, IdentityFiles(tmp_path / "b.crt", tmp_path / "b.key"), token, "b"
        )
    assert str(info.value) == "the collector refused: enrollment refused: token already used"
    assert token not in repr(info.value)


async def test_a_collector_certificate_from_another_ca_is_named(
    app: CollectorApp, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(create_ca("someone else", dt.datetime.now(dt.UTC))[0])
    config = agent_config(app, tmp_path, ca_file=str(other_ca))
    with pytest.raises(TlsError) as info:
        await enrolled(app, config)
    assert info.value.message == (
        f"the collector's certificate is not signed by the configured CA {other_ca}"
    )
    assert not IdentityFiles.for_config(config).exists()


async def test_a_name_mismatch_is_named(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path, enroll_address=f"127.0.0.1:{app.enroll_port}")
    with pytest.raises(TlsError) as info:
        await enrolled(app, config)
    assert info.value.message.startswith(
        "the collector's certificate does not name 127.0.0.1 (set collector.server_name"
    )
    # server_name fixes it, without turning verification off.
    fixed = agent_config(
        app, tmp_path, enroll_address=f"127.0.0.1:{app.enroll_port}", server_name="localhost"
    )
    assert (await enrolled(app, fixed)).agent_id == "web-07"


async def test_enrolling_on_the_ingest_port_is_explained(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path, enroll_address=f"localhost:{app.grpc_port}")
    with pytest.raises(TlsError) as info:
        await enrolled(app, config)
    assert info.value.message.startswith(
        f"the collector requires a client certificate on localhost:{app.grpc_port}"
    )


async def test_an_unreachable_collector_is_named(app: CollectorApp, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    config = agent_config(app, tmp_path, enroll_address=f"localhost:{closed}")
    with pytest.raises(TlsError, match=f"cannot reach the collector at localhost:{closed}"):
        await enrolled(app, config)


async def test_insecure_dev_agents_do_not_enroll(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path, insecure_dev=True)
    with pytest.raises(EnrollmentError, match="enrollment needs TLS"):
        await enrolled(app, config)


# --- running without or with a bad certificate -----------------------------------------------


def test_without_a_certificate_nothing_is_sent_and_the_operator_is_told(tmp_path: Path) -> None:
    config = parse_model(
        AgentConfig,
        {"state_dir": str(tmp_path / "agent"), "collector": {"ca_file": "ca.crt"}},
        source="agent.yaml",
    )
    problem = cli.enrollment_problem(config) or ""
    assert "this agent is not enrolled" in problem
    assert "canhgac-agent enroll --token TOKEN" in problem


def expired_identity(tmp_path: Path) -> IdentityFiles:
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("ca", now - 200 * DAY)
    key = new_key()
    issued = CertificateIssuer(ca, ca_key, 90 * DAY).issue(
        "web-01", key.public_key(), now - 100 * DAY
    )
    files = IdentityFiles(tmp_path / "agent" / "agent.crt", tmp_path / "agent" / "agent.key")
    files.write(issued.pem, key_pem(key))
    return files


def test_an_expired_certificate_is_reported_before_connecting(tmp_path: Path) -> None:
    files = expired_identity(tmp_path)
    config = parse_model(
        AgentConfig,
        {"state_dir": str(tmp_path / "agent"), "collector": {"ca_file": "ca.crt"}},
        source="agent.yaml",
    )
    expiry = files.load().not_after.strftime("%Y-%m-%d %H:%M:%S UTC")
    problem = cli.enrollment_problem(config) or ""
    assert problem.startswith(f"agent certificate expired at {expiry}, re-enroll")


async def stream_error(config: AgentConfig) -> grpc.aio.AioRpcError:
    identity = IdentityFiles.for_config(config).load()
    async with make_channel(config.collector, identity) as channel:
        call = channel.stream_stream(STREAM_METHOD)()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _hello(call, identity.agent_id)
    return info.value


async def _hello(call: Any, agent_id: str) -> None:
    hello = agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id=agent_id))
    await call.write(hello.SerializeToString())
    await call.read()


async def test_a_certificate_from_another_ca_is_explained(
    app: CollectorApp, tmp_path: Path
) -> None:
    config = agent_config(app, tmp_path)
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("another collector", now)
    key = new_key()
    issued = CertificateIssuer(ca, ca_key, 90 * DAY).issue("web-01", key.public_key(), now)
    files = IdentityFiles.for_config(config)
    files.write(issued.pem, key_pem(key))
    err = await stream_error(config)
    explained = await explain(err, config.collector, config.collector.address, files)
    assert str(explained) == (
        f"localhost:{app.grpc_port}: the collector refused this agent's certificate: it is not "
        "signed by the collector's CA (enrolled with another collector?); re-enroll"
    )


async def test_a_revoked_agent_hears_it(app: CollectorApp, tmp_path: Path) -> None:
    config = agent_config(app, tmp_path)
    identity = await enrolled(app, config)
    await app.store.run(app.store.store.revoke_agent, identity.agent_id, time.time_ns())
    err = await stream_error(config)
    explained = await explain(err, config.collector, config.collector.address, None)
    assert str(explained) == (
        "the collector refused: certificate revoked: agent 'web-07' was revoked at the "
        "collector; it needs a new enrollment token"
    )


# --- renewal ---------------------------------------------------------------------------------


async def test_renewal_replaces_key_and_certificate_and_the_stream_moves_to_them(
    app: CollectorApp, tmp_path: Path
) -> None:
    config = agent_config(app, tmp_path)
    old = await enrolled(app, config, agent_id="web-07")
    files = IdentityFiles.for_config(config)
    renewed: list[int] = []
    now = dt.datetime.now(dt.UTC)
    early = CertificateRenewer(
        config.collector, files, lambda: renewed.append(1), clock=lambda: now
    )
    assert not await early.renew_if_due()  # 90 days left: nothing to do

    later = CertificateRenewer(
        config.collector, files, lambda: renewed.append(1), clock=lambda: now + 61 * DAY
    )
    assert await later.renew_if_due()
    assert renewed == [1]
    new = files.load()
    assert new.agent_id == old.agent_id == "web-07"
    assert new.serial != old.serial
    assert new.key_pem != old.key_pem
    assert new.not_after >= old.not_after
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert not list(files.cert_file.parent.glob("*.new"))
    record = await app.store.run(app.store.store.get_agent, "web-07")
    assert record is not None
    assert record.cert_serial == new.serial
    metric = app.registry.get_sample_value("canhgac_collector_enrollments_total", {"kind": "renew"})
    assert metric == 1
    # The old certificate stays valid until it expires (a lost answer must not lock the agent
    # out), and the new one streams.
    assert await app.store.run(app.store.store.revoked_serials, [old.serial]) == set()
    async with make_channel(config.collector, new) as channel:
        call = channel.stream_stream(
            STREAM_METHOD, response_deserializer=agent_pb2.CollectorMessage.FromString
        )()
        hello = agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id="web-07"))
        await call.write(hello.SerializeToString())
        assert (await call.read()).WhichOneof("message") == "welcome"


# --- the pair on disk ------------------------------------------------------------------------


def pair(tmp_path: Path) -> tuple[IdentityFiles, tuple[bytes, bytes], tuple[bytes, bytes]]:
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = create_ca("ca", now)
    issuer = CertificateIssuer(ca, ca_key, 90 * DAY)
    made = []
    for _ in range(2):
        key = new_key()
        made.append((issuer.issue("web-01", key.public_key(), now).pem, key_pem(key)))
    files = IdentityFiles(tmp_path / "agent.crt", tmp_path / "agent.key")
    files.write(*made[0])
    return files, made[0], made[1]


def test_a_replacement_interrupted_between_the_renames_is_finished(tmp_path: Path) -> None:
    files, _, (new_cert, new_key_pem) = pair(tmp_path)
    # The crash came after the key was renamed, before the certificate was.
    files.key_file.write_bytes(new_key_pem)
    (tmp_path / "agent.crt.new").write_bytes(new_cert)
    assert files.load().cert_pem == new_cert
    assert not (tmp_path / "agent.crt.new").exists()


def test_a_replacement_interrupted_before_the_renames_keeps_the_old_pair(tmp_path: Path) -> None:
    files, (old_cert, _), (new_cert, new_key_pem) = pair(tmp_path)
    (tmp_path / "agent.key.new").write_bytes(new_key_pem)
    (tmp_path / "agent.crt.new").write_bytes(new_cert)
    assert files.load().cert_pem == old_cert
    assert list(tmp_path.iterdir()) == [] or sorted(p.name for p in tmp_path.iterdir()) == [
        "agent.crt",
        "agent.key",
    ]


def test_a_key_that_does_not_match_is_refused(tmp_path: Path) -> None:
    files, _, (_, other_key) = pair(tmp_path)
    files.key_file.write_bytes(other_key)
    with pytest.raises(TlsError, match="the agent key does not belong to the agent certificate"):
        files.load()


# --- the shipper -----------------------------------------------------------------------------


async def test_the_shipper_waits_for_enrollment_then_follows_renewal(
    app: CollectorApp, tmp_path: Path
) -> None:
    from agent.shipper import Shipper
    from agent.spool import SqliteSpool
    from agent.spooling import AsyncSpool
    from agent.status import StatusReporter

    config = agent_config(app, tmp_path)
    config = config.model_copy(
        update={
            "shipper": config.shipper.model_copy(
                update={"backoff_initial_ms": 50, "backoff_max_ms": 200}
            )
        }
    )
    (tmp_path / "agent").mkdir()
    spool = AsyncSpool(
        SqliteSpool(tmp_path / "agent" / "spool.db", max_bytes=1 << 20),
        batch_max_events=10,
        batch_max_delay_ms=10,
    )
    shipper = Shipper(config, spool, StatusReporter(started_ns=time.time_ns()), dict)
    stop = asyncio.Event()
    task = asyncio.create_task(shipper.run(stop))
    streams = app.enrollment.streams

    async def until(predicate: Any, what: str) -> None:
        for _ in range(100):
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last error: {shipper.last_error}")

    try:
        # Not enrolled: no connection at all, and the reason is plain.
        await until(lambda: "this agent is not enrolled" in shipper.last_error, "the refusal")
        assert not shipper.connected
        assert len(streams) == 0

        first = await enrolled(app, config, agent_id="web-07")
        await until(lambda: shipper.connected, "the shipper to connect once enrolled")
        assert [i.serial for i in streams.identities()] == [first.serial]

        files = IdentityFiles.for_config(config)
        later = dt.datetime.now(dt.UTC) + 61 * DAY
        renewer = CertificateRenewer(
            config.collector, files, shipper.reconnect, clock=lambda: later
        )
        assert await renewer.renew_if_due()
        second = files.load()
        await until(
            lambda: [i.serial for i in streams.identities()] == [second.serial],
            "the stream to move to the renewed certificate",
        )
    finally:
        stop.set()
        await task
        spool.close()


# --- the running agent reads its pair without cryptography -----------------------------------


def test_the_pair_on_disk_reads_the_same_with_ssl_as_with_cryptography(tmp_path: Path) -> None:
    files, (cert, key), _ = pair(tmp_path)
    assert ClientIdentity.from_files(files.cert_file, files.key_file) == ClientIdentity.from_pem(
        cert, key
    )


def test_an_unreadable_certificate_file_is_refused(tmp_path: Path) -> None:
    files, _, _ = pair(tmp_path)
    files.cert_file.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(TlsError, match="unreadable agent certificate or key"):
        files.load()


def test_the_running_agent_never_loads_cryptography(tmp_path: Path) -> None:
    """The agent's modules and its identity check leave `cryptography` (about 8 MB of steady
    memory) to enrollment and to the renewal child process."""
    import subprocess
    import sys

    files, _, _ = pair(tmp_path)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from agent import cli, runtime\n"
        "from agent.enroll.identity import IdentityFiles\n"
        f"IdentityFiles(Path({str(files.cert_file)!r}), Path({str(files.key_file)!r})).load()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


async def test_a_renewal_that_fails_in_the_child_says_why(
    app: CollectorApp, tmp_path: Path
) -> None:
    config = agent_config(app, tmp_path)
    await enrolled(app, config, agent_id="web-07")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    gone = config.collector.model_copy(update={"address": f"localhost:{closed}"})
    files = IdentityFiles.for_config(config)
    before = files.cert_file.read_bytes()
    renewer = CertificateRenewer(
        gone, files, lambda: None, clock=lambda: dt.datetime.now(dt.UTC) + 61 * DAY
    )
    with pytest.raises(CanhGacError, match=f"cannot reach the collector at localhost:{closed}"):
        await renewer.renew_if_due()
    assert files.cert_file.read_bytes() == before
