"""The parent side of collector tiers: `UpstreamService.Forward` receives a child collector's
alerts (a province forwarding to its ministry or to the national tier).

It is served on the ingest port, which already requires a client certificate chaining to this
collector's CA. What is checked here: the certificate is a collector certificate (CN = the
child's name and the SAN URI `urn:canhgac:collector:<name>`, which enrollment never writes
into an agent certificate), the certificate is on record in this collector's registry of
children and not revoked (`children issue` / `children revoke`, collector/forward/children.py;
a certificate signed by the CA but not recorded is refused), the batch names that child as its
origin, and it is bounded. Each alert is checked on its own; the valid ones are stored in one
transaction keyed by alert id (a retried batch stores nothing twice) with the `origin` the
child gave them, queued for this collector's own destinations, and acknowledged. An invalid
alert is left out of the ack and counted; the child retries it until it quarantines it.

Like the agent stream, the request arrives as raw bytes so that a malformed message is
answered INVALID_ARGUMENT and counted instead of failing inside gRPC.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from google.protobuf.message import DecodeError

from canhgac.errors import StorageError
from canhgac.v1 import alert_pb2
from collector import pki
from collector.enroll.identity import peer_certificate
from collector.enroll.issuer import serial_hex
from collector.metrics import CollectorMetrics
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.upstream")

SERVICE_NAME = "canhgac.v1.UpstreamService"
MAX_ALERTS = 1000
MAX_TEXT = 64 * 1024  # any one string field of an alert
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CHILD_VALIDITY = dt.timedelta(days=825)


def collector_uri(name: str) -> str:
    """The SAN URI naming a child collector in its client certificate."""
    return f"urn:canhgac:collector:{name}"


class NotACollectorCertificateError(ValueError):
    """The verified client certificate does not name a collector."""


def collector_from_pem(pem: bytes) -> str:
    """The child collector a verified client certificate names."""
    return collector_identity(pem)[0]


def collector_identity(pem: bytes) -> tuple[str, str]:
    """(the child collector's name, the certificate's serial in lowercase hex) of a verified
    client certificate; NotACollectorCertificateError when it names no collector."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise NotACollectorCertificateError(f"unreadable client certificate: {exc}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if len(names) == 1 else ""
    if not NAME_RE.match(name):
        raise NotACollectorCertificateError("the certificate's CN is not a collector name")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if collector_uri(name) not in uris:
        raise NotACollectorCertificateError(
            f"the certificate lacks the SAN URI {collector_uri(name)}: not a collector"
        )
    return name, serial_hex(cert.serial_number)


def issue_collector_certificate(
    ca_cert_pem: bytes, ca_key_pem: bytes, name: str, now: dt.datetime
) -> tuple[bytes, bytes]:
    """A client certificate for child collector `name`, signed by this (parent) collector's
    CA: (certificate PEM, private key PEM). The parent's operator hands both to the child."""
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a collector name")
    return pki.issue_client_cert(
        ca_cert_pem, ca_key_pem, name, now, CHILD_VALIDITY, uri=collector_uri(name)
    )


def alert_problem(alert: alert_pb2.Alert) -> str:
    """Why a forwarded alert cannot be stored, or "" when it can."""
    if not NAME_RE.match(alert.id):
        return "id"
    if not alert.rule_id:
        return "rule_id"
    if alert.origin and not NAME_RE.match(alert.origin):
        return "origin"
    # Every string field, found through the descriptor so a field added later is bounded too.
    texts = [*alert.group.keys(), *alert.group.values()]
    for f in alert.DESCRIPTOR.fields:
        if f.type == f.TYPE_STRING:
            value = getattr(alert, f.name)
            texts += list(value) if f.is_repeated else [value]
    if any(len(t) > MAX_TEXT for t in texts) or len(texts) > 20_000:
        return "too_large"
    return ""


class UpstreamAbortError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, error_type: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


class UpstreamServicer:
    """Servicer of UpstreamService.Forward (raw bytes in, raw ForwardAck out)."""

    def __init__(
        self,
        store: StoreWorker,
        metrics: CollectorMetrics,
        *,
        outbox: Sequence[str] = (),
        on_enqueued: Callable[[], None] | None = None,
        mutual_tls: bool = True,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._outbox = list(outbox)
        self._on_enqueued = on_enqueued
        self._mutual_tls = mutual_tls

    def _count(self, error_type: str, n: int = 1) -> None:
        self._metrics.errors.labels(stage="upstream", error_type=error_type).inc(n)

    async def _child(self, context: Any) -> str:
        pem = peer_certificate(context)
        if pem is None:
            if self._mutual_tls:
                raise UpstreamAbortError(
                    grpc.StatusCode.UNAUTHENTICATED, "a collector certificate is required", "auth"
                )
            return ""  # insecure_dev: the batch's origin is taken on trust
        try:
            name, serial = collector_identity(pem)
        except NotACollectorCertificateError as exc:
            raise UpstreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED, str(exc), "not_a_collector"
            ) from None
        await self._check_registry(name, serial)
        return name

    async def _check_registry(self, name: str, serial: str) -> None:
        """An allow-list: the certificate must be on record as issued to `name` (children
        issue) and not revoked. Asked on every call, so a revocation takes effect at the
        child's next batch."""
        try:
            state = await self._store.run(self._store.store.child_certificate_state, name, serial)
        except StorageError as exc:
            raise UpstreamAbortError(
                grpc.StatusCode.UNAVAILABLE, f"cannot check the certificate: {exc}", "storage"
            ) from None
        if state == "unknown":
            raise UpstreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                "certificate not issued by this collector's registry",
                "child_unknown",
            )
        if state == "revoked":
            raise UpstreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the certificate of child collector {name!r} is revoked",
                "child_revoked",
            )

    async def forward(self, raw: bytes, context: Any) -> bytes:
        try:
            ack = await self._forward(raw, context)
        except UpstreamAbortError as exc:
            self._count(exc.error_type)
            log.warning(
                "upstream batch refused",
                extra={"fields": {"peer": context.peer(), "reason": exc.message}},
            )
            await context.abort(exc.code, exc.message)
            raise AssertionError("unreachable") from None  # abort raises
        return ack.SerializeToString()

    async def _forward(self, raw: bytes, context: Any) -> alert_pb2.ForwardAck:
        child = await self._child(context)
        batch = alert_pb2.AlertBatch()
        try:
            batch.ParseFromString(raw)
        except DecodeError as exc:
            raise UpstreamAbortError(
                grpc.StatusCode.INVALID_ARGUMENT, f"malformed batch: {exc}", "decode"
            ) from None
        if child and batch.origin and batch.origin != child:
            raise UpstreamAbortError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"batch origin {batch.origin!r} is not the certificate's {child!r}",
                "origin_mismatch",
            )
        sender = child or batch.origin
        if not sender:
            raise UpstreamAbortError(
                grpc.StatusCode.INVALID_ARGUMENT, "the batch names no origin", "origin"
            )
        if len(batch.alerts) > MAX_ALERTS:
            raise UpstreamAbortError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(batch.alerts)} alerts in one batch (at most {MAX_ALERTS})",
                "too_many",
            )
        valid: list[alert_pb2.Alert] = []
        for alert in batch.alerts:
            problem = alert_problem(alert)
            if problem:
                self._count(f"invalid_{problem}")
                continue
            if not alert.origin:
                alert.origin = sender  # raised by the child itself
            valid.append(alert)
        if valid:
            try:
                new = await self._store.run(self._store.store.insert_alerts, valid, self._outbox)
            except StorageError as exc:
                # Counted once, by forward(), like every UpstreamAbortError.
                raise UpstreamAbortError(
                    grpc.StatusCode.UNAVAILABLE, f"cannot store: {exc}", "storage"
                ) from None
            if any(new) and self._outbox and self._on_enqueued is not None:
                self._on_enqueued()
            log.info(
                "alerts from child collector",
                extra={"fields": {"child": sender, "received": len(valid), "new": sum(new)}},
            )
            repeated = [a for a, fresh in zip(valid, new, strict=True) if not fresh]
            if repeated:
                valid = [a for a in valid if a.id not in await self._conflicts(repeated, sender)]
        return alert_pb2.ForwardAck(accepted_ids=[a.id for a in valid])

    async def _conflicts(self, repeated: list[alert_pb2.Alert], sender: str) -> set[str]:
        """Ids already stored with another origin: a retry of the same alert is a duplicate
        (acknowledged), but an id another collector already used is not this alert. It is not
        acknowledged, so the sender keeps it (and in the end quarantines it, visibly), and it
        is counted: a child must not make another's alert vanish by taking its id first."""

        def origins() -> dict[str, str]:
            found = {}
            for alert in repeated:
                stored = self._store.store.get_alert(alert.id)
                found[alert.id] = stored.alert.origin if stored is not None else ""
            return found

        stored_origin = await self._store.run(origins)
        clashing = {a.id for a in repeated if stored_origin.get(a.id, "") != a.origin}
        if clashing:
            self._count("alert_id_conflict", len(clashing))
            log.warning(
                "child collector sent alert ids already used by another origin",
                extra={"fields": {"child": sender, "alerts": len(clashing)}},
            )
        return clashing


def _identity(data: bytes) -> bytes:
    return data


def register_upstream(server: grpc.aio.Server, servicer: UpstreamServicer) -> None:
    """Serve UpstreamService.Forward on `server` (before it starts)."""
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.forward, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Forward": handler}),)
    )
