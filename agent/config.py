"""The agent's configuration: frozen, typed models parsed once from YAML."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from agent.guard import LimitsConfig
from agent.netsensor.config import NetSensorConfig
from agent.sources.agentstatus.source import AgentStatusConfig
from agent.sources.auditd import AuditdConfig
from agent.sources.authlog.source import AuthLogConfig
from agent.sources.devicelog.config import DeviceLogConfig
from agent.sources.fim import FimConfig
from agent.sources.inventory import InventoryConfig
from agent.sources.journald.config import JournaldConfig
from agent.sources.process import ProcessConfig
from agent.sources.sockets import SocketConfig
from agent.sources.syslog.config import SyslogConfig
from agent.sources.zeek.config import ZeekConfig
from canhgac.config import load_config
from canhgac.netaddr import check_connect_address, parse_host_port
from canhgac.strictmodel import AfterValidator, Field, StrictModel, model_validator

ConnectAddress = Annotated[str, AfterValidator(check_connect_address)]
DEFAULT_ENROLL_PORT = 9442
MiB = 1024 * 1024


class CollectorConnection(StrictModel):
    """How to reach the collector. TLS is verified against `ca_file`; never disabled silently.

    Every connection to `address` is mutual TLS with the certificate `canhgac-agent enroll`
    obtained from `enroll_address` (default: the same host, port 9442).
    """

    address: ConnectAddress = "localhost:9440"
    ca_file: Path | None = None
    # Name expected in the collector's certificate, when it differs from the address's host.
    server_name: str | None = None
    # The collector's enrollment port (ingest.enroll_listen there).
    enroll_address: ConnectAddress | None = None
    # This agent's certificate and key, written by `enroll` and by renewal. Default:
    # state_dir/agent.crt and state_dir/agent.key.
    cert_file: Path | None = None
    key_file: Path | None = None
    # Plaintext, for development only. The agent logs a warning at every connection.
    insecure_dev: bool = False

    def enroll_target(self) -> str:
        """Where to enroll: enroll_address, else the host of `address` on port 9442."""
        if self.enroll_address:
            return self.enroll_address
        host, _ = parse_host_port(self.address)
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{DEFAULT_ENROLL_PORT}"

    @model_validator(mode="after")
    def _trust_given(self) -> CollectorConnection:
        if not self.insecure_dev and self.ca_file is None:
            raise ValueError("ca_file is required (the CA that signed the collector's certificate)")
        return self


class ShipperConfig(StrictModel):
    """Batching and retry. A batch closes at max_events, max_bytes or max_delay_ms."""

    batch_max_events: int = Field(500, ge=1, le=100_000)
    batch_max_bytes: int = Field(1 * MiB, ge=1024, le=64 * MiB)
    batch_max_delay_ms: int = Field(250, ge=1, le=60_000)
    max_unacked_batches: int = Field(8, ge=1, le=1024)
    backoff_initial_ms: int = Field(250, ge=10, le=60_000)
    backoff_max_ms: int = Field(30_000, ge=100, le=3_600_000)
    heartbeat_interval_ms: int = Field(10_000, ge=500, le=600_000)


class SpoolConfig(StrictModel):
    """The on-disk spool; past max_bytes the oldest unsent events are dropped and counted."""

    max_bytes: int = Field(256 * MiB, ge=1 * MiB)


class SourcesConfig(StrictModel):
    """Host sources; a source set to null is disabled."""

    authlog: AuthLogConfig | None = AuthLogConfig()
    # On by default: only allow-listed programs' lines are parsed past their header, and a
    # missing file is "unavailable" at the cost of a stat per poll.
    syslog: SyslogConfig | None = SyslogConfig()
    # On by default: without audit.log it is "unavailable" and costs a stat per poll.
    auditd: AuditdConfig | None = AuditdConfig()
    agent_status: AgentStatusConfig | None = AgentStatusConfig()
    process: ProcessConfig | None = ProcessConfig()
    fim: FimConfig | None = FimConfig()
    sockets: SocketConfig | None = SocketConfig()
    inventory: InventoryConfig | None = InventoryConfig()
    # Off by default: where rsyslog runs, the journal and auth.log hold the same lines.
    journald: JournaldConfig | None = None
    # Off by default: needs CAP_NET_RAW (AmbientCapabilities=CAP_NET_RAW in the systemd unit).
    netsensor: NetSensorConfig | None = None
    # Off by default: opens ports (syslog from network devices, UDP/TCP 5514).
    devicelog: DeviceLogConfig | None = None
    # On by default: without a Zeek log directory it is "unavailable" and costs a stat every 10 s.
    zeek: ZeekConfig | None = ZeekConfig()


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class AgentConfig(StrictModel):
    """Root of the agent's configuration file."""

    # Defaults to the host name. Only used with collector.insecure_dev: an enrolled agent's id
    # is the one in its certificate.
    agent_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    state_dir: Path = Path("/var/lib/canhgac/agent")
    collector: CollectorConnection = CollectorConnection(ca_file=Path("/etc/canhgac/ca.crt"))
    shipper: ShipperConfig = ShipperConfig()
    spool: SpoolConfig = SpoolConfig()
    sources: SourcesConfig = SourcesConfig()
    limits: LimitsConfig = LimitsConfig()
    logging: LoggingConfig = LoggingConfig()

    def resolved_agent_id(self) -> str:
        """The configured agent id, else the host's short name. Used as is only without TLS
        (insecure_dev): an enrolled agent is the agent its certificate names."""
        return self.agent_id or socket.gethostname().split(".")[0]

    def cert_path(self) -> Path:
        return self.collector.cert_file or self.state_dir / "agent.crt"

    def key_path(self) -> Path:
        return self.collector.key_file or self.state_dir / "agent.key"


def load(path: str | Path) -> AgentConfig:
    return load_config(AgentConfig, path)


def example_text() -> str:
    # Imported here: importlib.resources brings tempfile, shutil, bz2 and lzma (about 1 MB)
    # into the running agent, which never prints its example.
    from importlib import resources

    return resources.files("agent").joinpath("data/agent.example.yaml").read_text("utf-8")
