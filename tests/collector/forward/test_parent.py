"""Parent collector forwarding: the destination and the servicer over real gRPC with mutual
TLS on loopback, on a real SQLite store."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2
from collector.forward.children import issue_child
from collector.forward.minimise import MinimisePolicy
from collector.forward.model import DeliveryError
from collector.forward.parent import ParentGrpcSettings, build
from collector.forward.upstream_service import (
    MAX_ALERTS,
    SERVICE_NAME,
    UpstreamServicer,
    issue_collector_certificate,
    register_upstream,
)
from collector.metrics import CollectorMetrics
from collector.storage.registry import open_store
from collector.storage.worker import StoreWorker
from tests.collector.forward.test_stix import item, known_alert, known_incident
from tests.collector.forward.tls_support import PkiFiles, make_pki


class LosesFirstAck(UpstreamServicer):
    """Stores the first batch, then fails the call as if the answer was lost on the way."""

    lost = False

    async def forward(self, raw: bytes, context: Any) -> bytes:
        answer = await super().forward(raw, context)
        if not self.lost:
            self.lost = True
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return answer


@dataclass
class Parent:
    port: int
    store: StoreWorker
    metrics: CollectorMetrics
    pki: PkiFiles

    def stored(self) -> list[alert_pb2.Alert]:
        return [s.alert for s in self.store.store.alerts(limit=1000)]

    def errors(self, error_type: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "canhgac_collector_errors_total", {"stage": "upstream", "error_type": error_type}
        )
        return value or 0.0

    async def child_settings(
        self, tmp_path: Path, name: str, *, recorded: bool = True
    ) -> ParentGrpcSettings:
        """A child's destination settings with a new certificate of the parent's CA, issued
        through the registry (`children issue`); `recorded=False` signs one with the same CA
        but leaves it off the record."""
        ca_cert, ca_key = self.pki.ca.read_bytes(), (self.pki.ca.parent / "ca.key").read_bytes()
        now = dt.datetime.now(dt.UTC)
        if recorded:
            issued = await self.store.run(issue_child, self.store.store, ca_cert, ca_key, name, now)
            cert, key = issued.cert_pem, issued.key_pem
        else:
            cert, key = issue_collector_certificate(ca_cert, ca_key, name, now)
        tmp_path.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.crt").write_bytes(cert)
        (tmp_path / f"{name}.key").write_bytes(key)
        return ParentGrpcSettings(
            target=f"localhost:{self.port}",
            ca_file=self.pki.ca,
            client_cert_file=tmp_path / f"{name}.crt",
            client_key_file=tmp_path / f"{name}.key",
        )


async def _serve(tmp_path: Path, servicer_class: type[UpstreamServicer]) -> AsyncIterator[Parent]:
    pki = make_pki(tmp_path / "parent-pki")
    store = StoreWorker(open_store("sqlite", sqlite_path=tmp_path / "parent.db", postgres_dsn=None))
    await store.run(store.store.migrate)
    metrics = CollectorMetrics.create(CollectorRegistry())
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    register_upstream(server, servicer_class(store, metrics))
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
        root_certificates=pki.ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield Parent(port, store, metrics, pki)
    finally:
        await server.stop(0.5)
        store.close()


@pytest.fixture
async def parent(tmp_path: Path) -> AsyncIterator[Parent]:
    async for p in _serve(tmp_path, UpstreamServicer):
        yield p


@pytest.fixture
async def lossy_parent(tmp_path: Path) -> AsyncIterator[Parent]:
    async for p in _serve(tmp_path, LosesFirstAck):
        yield p


async def test_delivers_exactly_once_across_a_retry(lossy_parent: Parent, tmp_path: Path) -> None:
    destination = build(
        "ministry",
        await lossy_parent.child_settings(tmp_path, "lang-son"),
        state_dir=tmp_path,
        collector="lang-son",
    )
    batch = [
        item("alert", "a1", alert=known_alert(id="a1", origin="")),
        item("alert", "a2", alert=known_alert(id="a2", origin="huyen-loc-binh")),
    ]
    try:
        with pytest.raises(DeliveryError) as lost:
            await destination.send(batch)
        assert (lost.value.reason, lost.value.permanent) == ("unavailable", False)
        assert await destination.send(batch) == {"a1", "a2"}
    finally:
        await destination.close()
    stored = await lossy_parent.store.run(lossy_parent.stored)
    assert sorted(a.id for a in stored) == ["a1", "a2"]
    # The child's own alert is named after it; a grandchild's keeps its origin.
    assert {a.id: a.origin for a in stored} == {"a1": "lang-son", "a2": "huyen-loc-binh"}
    # Minimised before leaving the province.
    assert all("10.0.0.5" not in a.summary for a in stored)
    assert all("destination.ip" not in a.group for a in stored)


async def test_incidents_travel_as_their_alerts(parent: Parent, tmp_path: Path) -> None:
    destination = build(
        "ministry", await parent.child_settings(tmp_path, "lang-son"), state_dir=tmp_path
    )
    incident = item("incident", "INC-2026-0001", incident=known_incident())
    try:
        assert await destination.send([incident]) == {"INC-2026-0001"}
    finally:
        await destination.close()
    assert await parent.store.run(parent.stored) == []


async def test_invalid_alerts_are_left_out_of_the_ack(parent: Parent, tmp_path: Path) -> None:
    destination = build(
        "ministry",
        await parent.child_settings(tmp_path, "lang-son"),
        state_dir=tmp_path,
        collector="lang-son",
        policy=MinimisePolicy(keep_private_addresses=True),
    )
    batch = [
        item("alert", "good", alert=known_alert(id="good")),
        item("alert", "bad id", alert=known_alert(id="bad id")),
    ]
    try:
        assert await destination.send(batch) == {"good"}
    finally:
        await destination.close()
    assert parent.errors("invalid_id") == 1
    stored = await parent.store.run(parent.stored)
    assert [a.id for a in stored] == ["good"]
    assert stored[0].group["destination.ip"] == "10.0.0.5"  # kept: the policy says so


async def test_a_certificate_that_is_not_a_collector_is_refused(
    parent: Parent, tmp_path: Path
) -> None:
    settings = await parent.child_settings(tmp_path, "lang-son")
    cert, key = parent.pki.client("lang-son")  # signed by the CA, but no collector SAN URI
    settings = settings.model_copy(update={"client_cert_file": cert, "client_key_file": key})
    refused = await _refusal(settings, tmp_path)
    assert refused.reason == "auth"
    assert parent.errors("not_a_collector") == 1
    assert await parent.store.run(parent.stored) == []


async def test_origin_must_be_the_certificate(parent: Parent, tmp_path: Path) -> None:
    destination = build(
        "ministry",
        await parent.child_settings(tmp_path, "lang-son"),
        state_dir=tmp_path,
        collector="cao-bang",
    )
    try:
        with pytest.raises(DeliveryError) as refused:
            await destination.send([item("alert", "a1", alert=known_alert(id="a1"))])
    finally:
        await destination.close()
    assert refused.value.reason == "auth"
    assert parent.errors("origin_mismatch") == 1


async def test_malformed_and_oversized_batches(parent: Parent, tmp_path: Path) -> None:
    settings = await parent.child_settings(tmp_path, "lang-son")
    credentials = grpc.ssl_channel_credentials(
        settings.ca_file.read_bytes(),
        settings.client_key_file.read_bytes(),
        settings.client_cert_file.read_bytes(),
    )
    async with grpc.aio.secure_channel(settings.target, credentials) as channel:
        call = channel.unary_unary(
            f"/{SERVICE_NAME}/Forward",
            request_serializer=lambda b: b,
            response_deserializer=alert_pb2.ForwardAck.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await call(b"\xff\xff\xff")
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        big = alert_pb2.AlertBatch(
            origin="lang-son",
            alerts=[alert_pb2.Alert(id=f"a{i}", rule_id="r") for i in range(MAX_ALERTS + 1)],
        )
        with pytest.raises(grpc.aio.AioRpcError) as oversized:
            await call(big.SerializeToString())
        assert oversized.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The parent keeps serving.
        ok = alert_pb2.AlertBatch(origin="lang-son", alerts=[alert_pb2.Alert(id="x", rule_id="r")])
        assert list((await call(ok.SerializeToString())).accepted_ids) == ["x"]
    assert (parent.errors("decode"), parent.errors("too_many")) == (1, 1)


async def test_untrusted_parent_is_a_failure(parent: Parent, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    settings = (await parent.child_settings(tmp_path, "lang-son")).model_copy(
        update={"ca_file": other.ca, "timeout_s": 5.0}
    )
    failure = await _refusal(settings, tmp_path)
    assert failure.permanent is False
    assert await parent.store.run(parent.stored) == []


async def test_an_alert_id_taken_by_another_child_is_not_acknowledged(
    parent: Parent, tmp_path: Path
) -> None:
    first = build(
        "ministry",
        await parent.child_settings(tmp_path, "lang-son"),
        state_dir=tmp_path,
        collector="lang-son",
    )
    second = build(
        "ministry",
        await parent.child_settings(tmp_path, "cao-bang"),
        state_dir=tmp_path,
        collector="cao-bang",
    )
    try:
        assert await first.send([item("alert", "a1", alert=known_alert(id="a1", origin=""))]) == {
            "a1"
        }
        # The same id from another collector is not that alert: refused, counted, kept there.
        clash = item("alert", "a1", alert=known_alert(id="a1", origin="", summary="other"))
        assert await second.send([clash]) == set()
        # A plain retry by the first child is still a duplicate, acknowledged.
        assert await first.send([item("alert", "a1", alert=known_alert(id="a1", origin=""))]) == {
            "a1"
        }
    finally:
        await first.close()
        await second.close()
    assert parent.errors("alert_id_conflict") == 1
    (stored,) = await parent.store.run(parent.stored)
    assert stored.origin == "lang-son"
    assert stored.summary != "other"


async def _refusal(settings: ParentGrpcSettings, tmp_path: Path) -> DeliveryError:
    """What the child sees when its batch fails (refused by the parent, or never sent)."""
    destination = build("ministry", settings, state_dir=tmp_path, collector="lang-son")
    try:
        with pytest.raises(DeliveryError) as refused:
            await destination.send([item("alert", "a1", alert=known_alert(id="a1"))])
    finally:
        await destination.close()
    return refused.value


async def test_a_certificate_signed_by_the_ca_but_not_recorded_is_refused(
    parent: Parent, tmp_path: Path
) -> None:
    settings = await parent.child_settings(tmp_path, "lang-son", recorded=False)
    refused = await _refusal(settings, tmp_path)
    assert (refused.reason, refused.permanent) == ("auth", False)
    assert "PERMISSION_DENIED" in str(refused)
    assert "certificate not issued by this collector's registry" in str(refused)
    assert parent.errors("child_unknown") == 1
    assert await parent.store.run(parent.stored) == []


async def test_a_revoked_child_is_refused_and_a_new_certificate_lets_it_back(
    parent: Parent, tmp_path: Path
) -> None:
    old = await parent.child_settings(tmp_path / "old", "lang-son")
    ok = build("ministry", old, state_dir=tmp_path, collector="lang-son")
    try:
        assert await ok.send([item("alert", "a0", alert=known_alert(id="a0"))]) == {"a0"}
    finally:
        await ok.close()
    assert await parent.store.run(parent.store.store.revoke_child, "lang-son", 1, "test") == 1

    refused = await _refusal(old, tmp_path)
    assert refused.reason == "auth"
    assert "PERMISSION_DENIED" in str(refused)
    assert "revoked" in str(refused)
    assert parent.errors("child_revoked") == 1

    # Issued again (a new serial): accepted, while the old certificate stays refused.
    new = build(
        "ministry",
        await parent.child_settings(tmp_path / "new", "lang-son"),
        state_dir=tmp_path,
        collector="lang-son",
    )
    try:
        assert await new.send([item("alert", "a1", alert=known_alert(id="a1"))]) == {"a1"}
    finally:
        await new.close()
    await _refusal(old, tmp_path)
    assert parent.errors("child_revoked") == 2
    assert sorted(a.id for a in await parent.store.run(parent.stored)) == ["a0", "a1"]


@pytest.mark.parametrize("failing", ["child_certificate_state", "insert_alerts"])
async def test_a_store_failure_is_unavailable_and_counted_once(
    parent: Parent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    settings = await parent.child_settings(tmp_path, "lang-son")

    def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("database is locked")

    monkeypatch.setattr(parent.store.store, failing, broken)
    refused = await _refusal(settings, tmp_path)
    # Retried by the child: its certificate was not found wanting, the store was down.
    assert (refused.reason, refused.permanent) == ("unavailable", False)
    assert parent.errors("storage") == 1
    assert parent.errors("child_unknown") == 0
