"""The Enroll and Renew RPCs: check the request, sign the agent's key, record it, answer.

Enroll is served on the enrollment port (no client certificate: the token is the credential);
Renew on the ingest port, where the client certificate is the credential. Every refusal is an
EnrollmentError with a bounded `reason` (counted in
`canhgac_collector_enrollment_refusals_total`) and a message for the operator; neither ever
contains the token. Messages arrive as raw bytes, like the stream's, so that a malformed
request is answered with INVALID_ARGUMENT and counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from canhgac.errors import EnrollmentError, StorageError
from canhgac.v1 import agent_pb2
from collector.audit.model import AuditEntry
from collector.enroll.csr import csr_public_key
from collector.enroll.identity import NotAnAgentCertificateError, peer_identity
from collector.enroll.issuer import CertificateIssuer
from collector.enroll.naming import agent_id_from_hostname, enrollable, unique_candidates
from collector.enroll.revocation import REVOKED_MESSAGE
from collector.enroll.tokens import parse_token, secret_matches
from collector.metrics import CollectorMetrics
from collector.storage.enrollment import TOKEN_REFUSALS, Enrollment, EnrollOutcome
from collector.storage.worker import StoreWorker

log = logging.getLogger("canhgac.collector.enroll")

M = TypeVar("M", bound=Message)

# What each refusal reason answers with. Token problems are PERMISSION_DENIED whatever they
# are, and an unknown token and a wrong secret read the same, so the answer does not tell a
# guesser which token ids exist.
_STATUS = {
    "unknown_token": grpc.StatusCode.PERMISSION_DENIED,
    "token_used": grpc.StatusCode.PERMISSION_DENIED,
    "token_expired": grpc.StatusCode.PERMISSION_DENIED,
    "token_revoked": grpc.StatusCode.PERMISSION_DENIED,
    "revoked": grpc.StatusCode.PERMISSION_DENIED,
    "unknown_certificate": grpc.StatusCode.PERMISSION_DENIED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_csr": grpc.StatusCode.INVALID_ARGUMENT,
    "agent_id_unavailable": grpc.StatusCode.FAILED_PRECONDITION,
    "bad_agent_id": grpc.StatusCode.FAILED_PRECONDITION,
    "storage": grpc.StatusCode.UNAVAILABLE,
}
_TOKEN_MESSAGES: dict[EnrollOutcome, str] = {
    "unknown_token": "unknown token",
    "token_used": "token already used",
    "token_expired": "token expired",
    "token_revoked": "token revoked",
}


def _token_refusal(outcome: EnrollOutcome) -> EnrollmentError:
    return EnrollmentError(f"enrollment refused: {_TOKEN_MESSAGES[outcome]}", reason=outcome)


def _parse(message_type: type[M], raw: bytes) -> M:
    msg = message_type()
    try:
        msg.ParseFromString(raw)
    except DecodeError:
        raise EnrollmentError("malformed request", reason="bad_request") from None
    return msg


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


class EnrollmentService:
    """Servicer for AgentService.Enroll and AgentService.Renew; one instance serves all agents."""

    def __init__(
        self,
        issuer: CertificateIssuer,
        store: StoreWorker,
        metrics: CollectorMetrics,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._issuer = issuer
        self._store = store
        self._metrics = metrics
        self._clock_ns = clock_ns

    async def enroll(self, raw: bytes, context: Any) -> bytes:
        return await self._answer("enroll", self._enroll, raw, context)

    async def _audit(self, agent_id: str, action: str, detail: dict[str, object], at: int) -> None:
        """Record an enrollment or renewal in the audit log (ids and serials only, never the
        token). The certificate is already recorded: a failure here is logged and counted,
        and the agent still gets its answer."""
        entry = AuditEntry(f"agent:{agent_id}", action, agent_id, detail)
        try:
            await self._store.run(self._store.store.append_audit, entry, at_ns=at)
        except StorageError as exc:
            self._metrics.errors.labels(stage="enrollment", error_type="audit").inc()
            log.error("%s of %s not recorded in the audit log: %s", action, agent_id, exc)

    async def renew(self, raw: bytes, context: Any) -> bytes:
        return await self._answer("renew", self._renew, raw, context)

    async def _answer(
        self,
        kind: str,
        handler: Callable[[bytes, Any], Any],
        raw: bytes,
        context: Any,
    ) -> bytes:
        try:
            try:
                response: agent_pb2.EnrollResponse = await handler(raw, context)
            except StorageError as exc:
                log.error("%s failed: %s", kind, exc)
                raise EnrollmentError(
                    "the collector cannot record the certificate now; try again later",
                    reason="storage",
                ) from None
        except EnrollmentError as exc:
            self._metrics.enrollment_refusals.labels(kind=kind, reason=exc.reason).inc()
            log.warning(
                "%s refused: %s",
                kind,
                exc.message,
                extra={"fields": {"reason": exc.reason, "peer": context.peer()}},
            )
            await context.abort(_STATUS.get(exc.reason, grpc.StatusCode.UNKNOWN), exc.message)
            raise AssertionError("unreachable: abort raises") from None
        self._metrics.enrollments.labels(kind=kind).inc()
        return response.SerializeToString()

    async def _enroll(self, raw: bytes, context: Any) -> agent_pb2.EnrollResponse:
        req = _parse(agent_pb2.EnrollRequest, raw)
        now_ns = self._clock_ns()
        parsed = parse_token(req.token)
        token = await self._store.run(self._store.store.get_token, parsed[0]) if parsed else None
        if parsed is None or token is None or not secret_matches(token, parsed[1]):
            raise _token_refusal("unknown_token")
        state = token.state(now_ns)
        if state != "unused":
            raise _token_refusal(TOKEN_REFUSALS[state])
        key = csr_public_key(req.csr_pem)
        hostname, version = req.hostname[:255], req.agent_version[:64]
        bound = bool(token.agent_id)
        if bound and not enrollable(token.agent_id):
            # `tokens create` refuses such ids; a token written otherwise must not crash us.
            raise EnrollmentError(
                f"the token names an agent id this collector cannot issue ({token.agent_id!r})",
                reason="bad_agent_id",
            )
        names = [token.agent_id] if bound else unique_candidates(agent_id_from_hostname(hostname))
        for agent_id in names:
            if (
                not bound
                and await self._store.run(self._store.store.get_agent, agent_id) is not None
            ):
                continue  # taken: skip signing a certificate the store would refuse
            issued = self._issuer.issue(agent_id, key, _utc(now_ns))
            outcome = await self._store.run(
                self._store.store.enroll_agent,
                Enrollment(
                    token_id=token.token_id,
                    now_ns=now_ns,
                    agent_id=agent_id,
                    hostname=hostname,
                    version=version,
                    system_id=token.system_id,
                    certificate=issued.record,
                    exclusive=not bound,
                ),
            )
            if outcome == "agent_id_taken":
                continue  # another enrollment took the name since we looked: try the next
            if outcome != "enrolled":
                raise _token_refusal(outcome)
            detail = {
                "system_id": token.system_id,
                "serial": issued.record.serial,
                "not_after_ns": issued.record.not_after_ns,
                "enrolled_with": token.token_id,
            }
            await self._audit(agent_id, "agent.enroll", detail, now_ns)
            log.info(
                "agent enrolled",
                extra={
                    "fields": {
                        "agent_id": agent_id,
                        "system_id": token.system_id,
                        "serial": issued.record.serial,
                        "not_after": _utc(issued.record.not_after_ns).isoformat(),
                        "enrolled_with": token.token_id,
                        "peer": context.peer(),
                    }
                },
            )
            return agent_pb2.EnrollResponse(
                agent_id=agent_id,
                certificate_pem=issued.pem.decode(),
                ca_certificate_pem=self._issuer.ca_pem.decode(),
                system_id=token.system_id,
            )
        raise EnrollmentError(
            f"no free agent id for host {hostname!r}: create the token with --agent-id",
            reason="agent_id_unavailable",
        )

    async def _renew(self, raw: bytes, context: Any) -> agent_pb2.EnrollResponse:
        try:
            identity = peer_identity(context)
        except NotAnAgentCertificateError as exc:
            raise EnrollmentError(str(exc), reason="unknown_certificate") from None
        if identity is None:
            raise EnrollmentError(
                "renewal needs the agent's client certificate (mutual TLS)",
                reason="unauthenticated",
            )
        req = _parse(agent_pb2.RenewRequest, raw)
        key = csr_public_key(req.csr_pem)
        store = self._store.store
        current = await self._store.run(store.get_certificate, identity.serial)
        if current is None or current.agent_id != identity.agent_id:
            raise EnrollmentError(
                "this certificate was not issued by this collector: re-enroll",
                reason="unknown_certificate",
            )
        revoked = EnrollmentError(
            REVOKED_MESSAGE.format(agent_id=identity.agent_id), reason="revoked"
        )
        if current.revoked_ns:
            raise revoked
        now_ns = self._clock_ns()
        issued = self._issuer.issue(identity.agent_id, key, _utc(now_ns))
        if not await self._store.run(
            store.renew_certificate, identity.agent_id, identity.serial, issued.record
        ):
            raise revoked  # revoked between the two reads
        detail = {
            "serial": issued.record.serial,
            "previous_serial": identity.serial,
            "not_after_ns": issued.record.not_after_ns,
        }
        await self._audit(identity.agent_id, "agent.renew", detail, now_ns)
        agent = await self._store.run(store.get_agent, identity.agent_id)
        log.info(
            "agent certificate renewed",
            extra={
                "fields": {
                    "agent_id": identity.agent_id,
                    "serial": issued.record.serial,
                    "previous_serial": identity.serial,
                    "not_after": _utc(issued.record.not_after_ns).isoformat(),
                }
            },
        )
        return agent_pb2.EnrollResponse(
            agent_id=identity.agent_id,
            certificate_pem=issued.pem.decode(),
            ca_certificate_pem=self._issuer.ca_pem.decode(),
            system_id=agent.system_id if agent else "",
        )
