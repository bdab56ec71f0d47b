"""Enrollment over the real enrollment port: tokens, CSRs, the certificate issued, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.enroll.keys import csr_pem, new_key
from collector.app import CollectorApp
from tests.collector.enroll.helpers import (
    HOUR_NS,
    FakeClock,
    ca_pem,
    call_enroll,
    enroll_with,
    make_token,
    running_collector,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[CollectorApp]:
    async with running_collector(tmp_path, clock) as running:
        yield running


def metric(app: CollectorApp, name: str, **labels: str) -> float:
    return app.registry.get_sample_value(name, labels) or 0.0


async def refused(app: CollectorApp, token: str, csr: str | None = None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_enroll(app, token, csr or csr_pem(new_key()))
    return info.value


async def test_enrollment_issues_a_client_certificate_naming_the_agent(
    app: CollectorApp,
) -> None:
    token = await make_token(app, system_id="cong-dich-vu-cong")
    agent = await enroll_with(app, token, hostname="Web-01.tinh.gov.vn")
    assert (agent.agent_id, agent.system_id) == ("web-01", "cong-dich-vu-cong")
    assert agent.ca_pem == ca_pem(app)
    cert = x509.load_pem_x509_certificate(agent.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(agent.ca_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-01"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:canhgac:agent:web-01"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=90) <= lifetime <= dt.timedelta(days=90, minutes=6)
    key = serialization.load_pem_private_key(agent.key_pem, None)
    assert cert.public_key() == key.public_key()

    # The agent record carries the system binding and the certificate.
    record = await app.store.run(app.store.store.get_agent, "web-01")
    assert record is not None
    assert (record.enrollment_status, record.system_id) == ("enrolled", "cong-dich-vu-cong")
    assert record.cert_serial == format(cert.serial_number, "x")
    assert record.hostname == "Web-01.tinh.gov.vn"
    assert metric(app, "canhgac_collector_enrollments_total", kind="enroll") == 1


async def test_a_used_token_is_refused(app: CollectorApp) -> None:
    token = await make_token(app)
    await enroll_with(app, token)
    err = await refused(app, token)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "enrollment refused: token already used"
    labels = {"kind": "enroll", "reason": "token_used"}
    assert metric(app, "canhgac_collector_enrollment_refusals_total", **labels) == 1


async def test_an_expired_token_is_refused(app: CollectorApp, clock: FakeClock) -> None:
    token = await make_token(app, ttl_ns=HOUR_NS, now_ns=clock.now_ns)
    clock.now_ns += HOUR_NS
    err = await refused(app, token)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "enrollment refused: token expired"
    labels = {"kind": "enroll", "reason": "token_expired"}
    assert metric(app, "canhgac_collector_enrollment_refusals_total", **labels) == 1


async def test_unknown_malformed_and_wrong_secret_tokens_read_the_same(app: CollectorApp) -> None:
    real = await make_token(app)
    wrong_secret = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    unknown = "cgt_000000000000_" + "A" * 43
    for token in (unknown, "not a token", "", wrong_secret):
        err = await refused(app, token)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.details() == "enrollment refused: unknown token"
        assert token[4:] not in (err.details() or "") or not token
    labels = {"kind": "enroll", "reason": "unknown_token"}
    assert metric(app, "canhgac_collector_enrollment_refusals_total", **labels) == 4
    await enroll_with(app, real)  # the real token is still good


async def test_a_revoked_token_is_refused(app: CollectorApp) -> None:
    token = await make_token(app)
    token_id = token.split("_")[1]
    assert await app.store.run(app.store.store.revoke_token, token_id, app.clock_ns())
    err = await refused(app, token)
    assert err.details() == "enrollment refused: token revoked"


def _csr_with(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


async def test_bad_csrs_are_refused_and_do_not_use_the_token(app: CollectorApp) -> None:
    token = await make_token(app)
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # weak on purpose: it must be refused
    cases = {
        "garbage": (
            "-----BEGIN CERTIFICATE REQUEST-----\nbm9wZQ==\n-----END CERTIFICATE REQUEST-----\n"
        ),
        "empty": " ",
        "p384": _csr_with(ec.generate_private_key(ec.SECP384R1())),
        "rsa1024": _csr_with(weak_rsa),
    }
    expected = {
        "garbage": "not a PEM PKCS#10 request",
        "empty": "csr_pem is empty",
        "p384": "EC keys must be on P-256, not secp384r1",
        "rsa1024": "RSA keys must have at least 2048 bits, not 1024",
    }
    for name, csr in cases.items():
        err = await refused(app, token, csr)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert err.details() == f"certificate request refused: {expected[name]}"
    labels = {"kind": "enroll", "reason": "bad_csr"}
    assert metric(app, "canhgac_collector_enrollment_refusals_total", **labels) == 4
    # Ed25519 and RSA 2048 are accepted; the token was not consumed by the refusals.
    ok = await call_enroll(app, token, _csr_with(ed25519.Ed25519PrivateKey.generate()))
    assert ok.agent_id == "test-host"
    rsa_token = await make_token(app)
    strong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert (await call_enroll(app, rsa_token, _csr_with(strong))).certificate_pem


async def test_a_csr_signed_by_another_key_is_refused(app: CollectorApp) -> None:
    token = await make_token(app)
    good = x509.load_pem_x509_csr(csr_pem(new_key()).encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # break the signature, keep the structure
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    err = await refused(app, token, tampered.decode())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature does not verify" in (err.details() or "")


async def test_concurrent_enrollments_with_one_token_make_one_agent(app: CollectorApp) -> None:
    token = await make_token(app)
    results = await asyncio.gather(
        *(enroll_with(app, token, hostname=f"host-{i}") for i in range(6)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == 5
    assert {e.details() for e in losers} == {"enrollment refused: token already used"}
    agents = await app.store.run(app.store.store.list_agents)
    assert [a.agent_id for a in agents] == [winners[0].agent_id]


async def test_agent_ids_from_host_names_are_made_unique(app: CollectorApp) -> None:
    ids = [
        (await enroll_with(app, await make_token(app), hostname="web.tinh.gov.vn")).agent_id
        for _ in range(3)
    ]
    assert ids == ["web", "web-2", "web-3"]


async def test_a_token_naming_an_agent_re_enrolls_it(app: CollectorApp) -> None:
    first = await enroll_with(app, await make_token(app, agent_id="db-01"), hostname="x")
    second = await enroll_with(app, await make_token(app, agent_id="db-01"), hostname="y")
    assert first.agent_id == second.agent_id == "db-01"
    old = x509.load_pem_x509_certificate(first.cert_pem).serial_number
    revoked = await app.store.run(app.store.store.revoked_serials, [format(old, "x")])
    assert revoked == {format(old, "x")}  # the earlier certificate is superseded


async def test_the_enrollment_port_serves_only_enroll(app: CollectorApp) -> None:
    from tests.collector.enroll.helpers import RENEW, enroll_channel
    from tests.collector.ingest.conftest import raw_stream

    async with enroll_channel(app) as channel:
        renew = channel.unary_unary(RENEW)
        with pytest.raises(grpc.aio.AioRpcError) as renewing:
            await renew(b"", timeout=10)
        # Nothing is written on the stream: the refusal may come before any write could.
        with pytest.raises(grpc.aio.AioRpcError) as streaming:
            await raw_stream(channel).read()
    assert renewing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert streaming.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_token_naming_an_id_too_long_for_a_certificate_is_refused(
    app: CollectorApp,
) -> None:
    token = await make_token(app, agent_id="a" * 65)  # `tokens create` would refuse it
    err = await refused(app, token)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot issue" in (err.details() or "")
