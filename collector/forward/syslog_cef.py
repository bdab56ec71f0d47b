"""The syslog destination for SOC SIEMs: RFC 5424 messages carrying CEF, over TLS (RFC 5425).

Each alert or incident is one syslog message, framed by octet counting (`<length> <message>`),
on one persistent TLS connection that is reopened when it fails or the SIEM closes it:

    <PRI>1 TIMESTAMP HOSTNAME canhgac - alert - CEF:0|Canh Gac|collector|VERSION|RULE|TITLE|SEV|ext

PRI is facility * 8 + a syslog severity derived from the alert's; the message has no
structured data (we have no private enterprise number for an SD-ID) and no BOM (SIEM CEF
parsers expect the payload to start with "CEF:"). Header fields escape `\\` and `|`, extension
values escape `\\`, `=` and line breaks, as the CEF specification asks.

What "accepted" means: syslog over TLS has no application acknowledgement, so an item counts
as delivered once its message was written on the TLS connection and the write buffer drained
to the kernel without error. A message written just before the SIEM drops the connection can
therefore be lost; that is the protocol's limit, and why the SIEM should not be the only
destination of record. Before each batch a connection the SIEM has closed is replaced, and a
write that fails stops the batch: what was not written is retried by the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from canhgac import __version__
from canhgac.config import StrictModel
from canhgac.v1 import alert_pb2
from collector.dossiers.incidents import Incident
from collector.forward.minimise import MinimisePolicy, minimise_alert, minimise_incident
from collector.forward.model import DeliveryError, Outgoing

VENDOR = "Canh Gac"
PRODUCT = "collector"
APP_NAME = "canhgac"
# Alert severity -> (syslog severity, CEF severity 0-10).
_ALERT_SEVERITY = {
    alert_pb2.SEVERITY_UNSPECIFIED: (5, 0),
    alert_pb2.SEVERITY_INFORMATIONAL: (6, 1),
    alert_pb2.SEVERITY_LOW: (5, 3),
    alert_pb2.SEVERITY_MEDIUM: (4, 5),
    alert_pb2.SEVERITY_HIGH: (3, 8),
    alert_pb2.SEVERITY_CRITICAL: (2, 10),
}
_INCIDENT_SEVERITY = {
    "normal": (4, 5),
    "serious": (3, 8),
    "national_security_or_major_disruption": (2, 10),
}
_HOSTNAME = re.compile(r"^[!-~]{1,255}$")


class SyslogCefSettings(StrictModel):
    """The SIEM's syslog-over-TLS listener. `ca_file` verifies it (default: system CAs);
    `server_name` is the name its certificate carries when it differs from `host`;
    `hostname` is the HOSTNAME field (default: the collector's name)."""

    kind: Literal["syslog_cef"] = "syslog_cef"
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(6514, ge=1, le=65535)
    server_name: str | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    facility: int = Field(13, ge=0, le=23)  # 13: log audit
    hostname: str = Field("", pattern=r"^[!-~]{0,255}$")
    timeout_s: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self


def escape_header(value: str) -> str:
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"[\r\n]+", " ", value)


def escape_extension(value: str) -> str:
    value = value.replace("\\", "\\\\").replace("=", "\\=")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _ms(ns: int) -> str:
    return str(ns // 1_000_000)


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def cef(signature: str, name: str, severity: int, extension: list[tuple[str, str]]) -> str:
    """One CEF record; empty extension values are left out."""
    header = "|".join(
        escape_header(v)
        for v in ("CEF:0", VENDOR, PRODUCT, __version__, signature, name, str(severity))
    )
    ext = " ".join(f"{k}={escape_extension(v)}" for k, v in extension if v)
    return f"{header}|{ext}"


def alert_cef(alert: alert_pb2.Alert) -> tuple[int, str]:
    """(syslog severity, CEF record) of one minimised alert."""
    syslog_sev, cef_sev = _ALERT_SEVERITY.get(alert.severity, (5, 0))
    g = alert.group
    ext = [
        ("rt", _ms(alert.created_ns)),
        ("start", _ms(alert.first_seen_ns) if alert.first_seen_ns else ""),
        ("end", _ms(alert.last_seen_ns) if alert.last_seen_ns else ""),
        ("cnt", str(alert.event_count) if alert.event_count else ""),
        ("cat", alert.category),
        ("src", _ip(g.get("source.ip", ""))),
        ("spt", g.get("source.port", "") if g.get("source.port", "").isdigit() else ""),
        ("dst", _ip(g.get("destination.ip", ""))),
        ("dpt", g.get("destination.port", "") if g.get("destination.port", "").isdigit() else ""),
        ("suser", g.get("user.name", "")),
        ("dhost", alert.host),
        ("dproc", g.get("process.executable") or g.get("process.name", "")),
        ("fname", g.get("file.name", "")),
        ("filePath", g.get("file.path", "")),
        ("msg", alert.summary),
        ("externalId", alert.id),
        ("dvchost", alert.origin),
        ("cs1Label", "system" if alert.system_id else ""),
        ("cs1", alert.system_id),
        ("cn1Label", "systemLevel" if alert.system_level else ""),
        ("cn1", str(alert.system_level) if alert.system_level else ""),
        ("cs2Label", "incident" if alert.incident_id else ""),
        ("cs2", alert.incident_id),
        ("cs3Label", "mitreTechniques" if alert.mitre_techniques else ""),
        ("cs3", ",".join(alert.mitre_techniques)),
    ]
    record = cef(alert.rule_id, alert.rule_title or alert.rule_id, cef_sev, ext)
    return syslog_sev, record


def incident_cef(incident: Incident) -> tuple[int, str]:
    """(syslog severity, CEF record) of one minimised incident."""
    syslog_sev, cef_sev = _INCIDENT_SEVERITY[incident.severity]
    ext = [
        ("start", str(int(incident.detected_at.timestamp() * 1000))),
        ("cat", incident.category),
        ("msg", incident.description),
        ("externalId", incident.id),
        ("outcome", incident.status),
        ("cs1Label", "system" if incident.system_id else ""),
        ("cs1", incident.system_id),
        ("cn1Label", "systemLevel" if incident.system_level else ""),
        ("cn1", str(incident.system_level) if incident.system_level else ""),
        ("cs4Label", "publicIps" if incident.public_ips else ""),
        ("cs4", ",".join(incident.public_ips)),
        ("cs5Label", "domains" if incident.domains else ""),
        ("cs5", ",".join(incident.domains)),
        ("cs6Label", "alerts" if incident.alert_ids else ""),
        ("cs6", ",".join(incident.alert_ids)),
    ]
    return syslog_sev, cef("incident", incident.title or f"Incident {incident.id}", cef_sev, ext)


def syslog_frame(
    *, facility: int, severity: int, timestamp_ns: int, hostname: str, msgid: str, msg: str
) -> bytes:
    """An RFC 5424 message with RFC 5425 octet-counting framing."""
    when = dt.datetime.fromtimestamp(timestamp_ns // 1000 / 1_000_000, tz=dt.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = hostname if _HOSTNAME.match(hostname) else "-"
    line = f"<{facility * 8 + severity}>1 {stamp} {host} {APP_NAME} - {msgid} - {msg}"
    data = line.encode("utf-8")
    return str(len(data)).encode() + b" " + data


def message_for(
    item: Outgoing, settings: SyslogCefSettings, policy: MinimisePolicy, hostname: str
) -> bytes | None:
    """The framed message of one item; None when the policy withholds it."""
    if item.alert is not None:
        alert = minimise_alert(item.alert, policy)
        severity, record = alert_cef(alert)
        when = alert.created_ns or item.item.created_ns
        msgid = "alert"
    elif item.incident is not None:
        incident = minimise_incident(item.incident, policy)
        if incident is None:
            return None
        severity, record = incident_cef(incident)
        when = item.item.created_ns
        msgid = "incident"
    else:
        raise DeliveryError(
            "missing", f"{item.item.kind} {item.item.item_id} is not stored", permanent=True
        )
    return syslog_frame(
        facility=settings.facility,
        severity=severity,
        timestamp_ns=when,
        hostname=settings.hostname or hostname,
        msgid=msgid,
        msg=record,
    )


def _tls(settings: SyslogCefSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.client_cert_file and settings.client_key_file:
        context.load_cert_chain(str(settings.client_cert_file), str(settings.client_key_file))
    return context


class SyslogCefDestination:
    """Destination (collector/forward/model.py) writing CEF over syslog/TLS to a SIEM."""

    def __init__(
        self, name: str, settings: SyslogCefSettings, *, policy: MinimisePolicy, hostname: str
    ) -> None:
        self.name = name
        self._settings = settings
        self._policy = policy
        self._hostname = hostname
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connections = 0  # connections opened so far (a reconnect adds one)

    @property
    def connected(self) -> bool:
        """An open connection the SIEM has not closed (as far as this side has seen)."""
        return (
            self._writer is not None
            and self._reader is not None
            and not self._writer.is_closing()
            and not self._reader.at_eof()
        )

    async def _connect(self) -> asyncio.StreamWriter:
        if self.connected and self._writer is not None:
            return self._writer
        await self.close()
        s = self._settings
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    s.host, s.port, ssl=_tls(s), server_hostname=s.server_name or s.host
                ),
                s.timeout_s,
            )
        except TimeoutError:
            raise DeliveryError("timeout", f"no TLS connection to {s.host}:{s.port}") from None
        except ssl.SSLError as exc:
            raise DeliveryError("tls", f"TLS with {s.host}:{s.port} failed: {exc}") from None
        except OSError as exc:
            raise DeliveryError("refused", f"cannot connect to {s.host}:{s.port}: {exc}") from None
        self._reader, self._writer = reader, writer
        self.connections += 1
        return writer

    async def send(self, batch: Sequence[Outgoing]) -> set[str]:
        accepted: set[str] = set()
        frames: list[tuple[str, bytes]] = []
        for item in batch:
            frame = message_for(item, self._settings, self._policy, self._hostname)
            if frame is None:
                accepted.add(item.item.item_id)  # withheld by policy: nothing to send, ever
            else:
                frames.append((item.item.item_id, frame))
        if not frames:
            return accepted
        await asyncio.sleep(0)  # let a pending close by the SIEM be seen before writing
        writer = await self._connect()
        for item_id, frame in frames:
            try:
                writer.write(frame)
                await asyncio.wait_for(writer.drain(), self._settings.timeout_s)
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
                await self.close()
                if accepted:
                    return accepted
                reason = "timeout" if isinstance(exc, TimeoutError) else "refused"
                raise DeliveryError(reason, f"write failed: {exc or type(exc).__name__}") from None
            accepted.add(item_id)
        return accepted

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            # Closing a broken connection may fail; there is nothing more to do about it.
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2)


def build(
    name: str,
    settings: SyslogCefSettings,
    *,
    state_dir: Path,
    policy: MinimisePolicy | None = None,
    hostname: str = "",
) -> SyslogCefDestination:
    """The registry's factory; `policy` defaults to the settings' `minimise` (see stix.build)."""
    del state_dir  # nothing kept locally
    chosen = policy or getattr(settings, "minimise", None) or MinimisePolicy()
    return SyslogCefDestination(name, settings, policy=chosen, hostname=hostname or "-")
