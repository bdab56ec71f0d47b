"""The parent-collector destination: a province forwards its alerts to a ministry or national
tier running Canh Gác, over gRPC with mutual TLS, reusing the wire contract
(`UpstreamService.Forward(AlertBatch) returns (ForwardAck)`, protos/canhgac/v1/alert.proto).

The child presents a collector certificate issued by the parent's CA (CN = this collector's
name; the parent's operator issues it with `canhgac-collector children issue`, which records
it, since the parent accepts only recorded, unrevoked ones) and verifies the parent against that
CA. Alerts are minimised like for any external destination, sent as one batch named after
this collector, and the ids in the ack are the accepted ones; the parent stores by alert id, so
a batch retried after a lost ack is stored once.

Incidents: the parent regroups alerts by their `incident_id`, so an incident item sends
nothing of its own and is accepted at once; its alerts travel as alert items (every new alert
is queued for every destination), each carrying the incident id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import grpc
from pydantic import Field

from canhgac.config import StrictModel
from canhgac.v1 import alert_pb2
from collector.forward.minimise import MinimisePolicy, minimise_alert
from collector.forward.model import DeliveryError, Outgoing
from collector.forward.upstream_service import MAX_ALERTS, SERVICE_NAME


class ParentGrpcSettings(StrictModel):
    """The parent collector's ingest port (`target`, host:port) and the mutual TLS material:
    `ca_file` is the parent's CA, the client certificate and key were issued by it for this
    collector. `server_name` overrides the name checked in the parent's certificate."""

    kind: Literal["parent_grpc"] = "parent_grpc"
    target: str = Field(pattern=r"^[^\s/]+:[0-9]{1,5}$")
    ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    server_name: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=300)


# gRPC status -> (reason label, permanent)
_FAILURES: dict[grpc.StatusCode, tuple[str, bool]] = {
    grpc.StatusCode.UNAVAILABLE: ("unavailable", False),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("timeout", False),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("throttled", False),
    # A certificate the parent refuses is fixed by an operator; retrying after is right.
    grpc.StatusCode.UNAUTHENTICATED: ("auth", False),
    grpc.StatusCode.PERMISSION_DENIED: ("auth", False),
    grpc.StatusCode.INVALID_ARGUMENT: ("rejected", True),
}


class ParentGrpcDestination:
    """Destination (collector/forward/model.py) forwarding alerts to a parent collector."""

    def __init__(
        self, name: str, settings: ParentGrpcSettings, *, collector: str, policy: MinimisePolicy
    ) -> None:
        self.name = name
        self._settings = settings
        self._collector = collector
        self._policy = policy
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> grpc.aio.UnaryUnaryMultiCallable:
        if self._channel is None:
            s = self._settings
            try:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=s.ca_file.read_bytes(),
                    private_key=s.client_key_file.read_bytes(),
                    certificate_chain=s.client_cert_file.read_bytes(),
                )
            except OSError as exc:
                raise DeliveryError("config", f"cannot read TLS material: {exc}") from None
            options = [("grpc.ssl_target_name_override", s.server_name)] if s.server_name else []
            self._channel = grpc.aio.secure_channel(s.target, credentials, options=options)
        return self._channel.unary_unary(
            f"/{SERVICE_NAME}/Forward",
            request_serializer=alert_pb2.AlertBatch.SerializeToString,
            response_deserializer=alert_pb2.ForwardAck.FromString,
        )

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        accepted = {o.item.item_id for o in batch if o.incident is not None}
        alerts = [minimise_alert(o.alert, self._policy) for o in batch if o.alert is not None]
        missing = {o.item.item_id for o in batch if o.alert is None and o.incident is None}
        if missing and not alerts and not accepted:
            raise DeliveryError("missing", f"not stored: {sorted(missing)[:3]}", permanent=True)
        for start in range(0, len(alerts), MAX_ALERTS):
            chunk = alerts[start : start + MAX_ALERTS]
            request = alert_pb2.AlertBatch(origin=self._collector, alerts=chunk)
            try:
                ack = await self._stub()(request, timeout=self._settings.timeout_s)
            except grpc.aio.AioRpcError as exc:
                if accepted:
                    return accepted
                reason, permanent = _FAILURES.get(exc.code(), ("rpc_error", False))
                raise DeliveryError(
                    reason, f"{exc.code().name}: {exc.details()}", permanent=permanent
                ) from None
            sent = {a.id for a in chunk}
            accepted |= sent & set(ack.accepted_ids)
        return accepted

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


def build(
    name: str,
    settings: ParentGrpcSettings,
    *,
    state_dir: Path,
    collector: str = "",
    policy: MinimisePolicy | None = None,
) -> ParentGrpcDestination:
    """The registry's factory; `policy` defaults to the settings' `minimise` (see stix.build).
    `collector` is this collector's name, the origin of every batch."""
    del state_dir  # nothing kept locally: the parent deduplicates by alert id
    chosen = policy or getattr(settings, "minimise", None) or MinimisePolicy()
    return ParentGrpcDestination(name, settings, collector=collector, policy=chosen)
