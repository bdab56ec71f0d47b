"""The collector's configuration: frozen, typed models parsed once from YAML.

`canhgac-collector example` prints a commented example; `canhgac-collector validate` checks a
file. Runtime objects receive these models, never raw dictionaries.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator

from canhgac.config import StrictModel, load_config
from canhgac.netaddr import check_listen_address
from collector.forward.minimise import MinimisePolicy
from collector.forward.national import NationalJsonSettings
from collector.forward.parent import ParentGrpcSettings
from collector.forward.stix import StixTaxiiSettings
from collector.forward.syslog_cef import SyslogCefSettings

ListenAddress = Annotated[str, AfterValidator(check_listen_address)]

MiB = 1024 * 1024


class TlsConfig(StrictModel):
    """How the ingest port is secured.

    auto: CA and server certificate generated under state_dir/pki on first start.
    files: operator-supplied server certificate and key, plus the CA (certificate and key)
      that signs agents' certificates at enrollment and verifies them on every connection.
    insecure_dev: plaintext, for development only; the collector logs a warning at start.
    In auto and files modes every agent connection is mutual TLS.
    """

    mode: Literal["auto", "files", "insecure_dev"] = "auto"
    server_names: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1"], min_length=1
    )
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    ca_key_file: Path | None = None
    # Validity of the client certificates signed at enrollment and renewal.
    agent_cert_days: int = Field(90, ge=1, le=825)

    @model_validator(mode="after")
    def _files_given(self) -> TlsConfig:
        if self.mode == "files" and (self.cert_file is None or self.key_file is None):
            raise ValueError("mode 'files' needs cert_file and key_file")
        if self.mode == "files" and (self.ca_file is None or self.ca_key_file is None):
            raise ValueError(
                "mode 'files' needs ca_file and ca_key_file (the CA that signs and verifies "
                "agents' certificates)"
            )
        return self


class IngestConfig(StrictModel):
    """The gRPC ingest port and the limits it enforces on every agent."""

    listen: ListenAddress = "0.0.0.0:9440"  # agents on other hosts must reach it
    # Enrollment port: server-authenticated TLS only (an enrolling agent has no certificate
    # yet), serving nothing but Enroll. null disables enrollment.
    enroll_listen: ListenAddress | None = "0.0.0.0:9442"
    # How often the collector looks for revoked certificates among open streams (the CLI
    # revokes from another process, through the store).
    revocation_poll_ms: int = Field(2000, ge=100, le=60_000)
    max_batch_events: int = Field(5000, ge=1, le=100_000)
    max_batch_bytes: int = Field(4 * MiB, ge=1024, le=64 * MiB)
    heartbeat_interval_ms: int = Field(10_000, ge=1000, le=600_000)
    max_unacked_batches: int = Field(16, ge=1, le=1024)
    # Per agent; above it the collector slows that agent down (FlowControl), never drops.
    # 0 = unlimited. Bursts of twice the rate are allowed.
    max_events_per_second: int = Field(20_000, ge=0, le=10_000_000)
    # Batches waiting for detection; ingest slows down (never drops) when it is full.
    bus_capacity: int = Field(256, ge=1, le=100_000)


class StorageConfig(StrictModel):
    """Where events, alerts and agents are kept. sqlite is the embedded default."""

    kind: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path | None = None
    postgres_dsn: SecretStr | None = None

    @model_validator(mode="after")
    def _dsn_given(self) -> StorageConfig:
        if self.kind == "postgres" and self.postgres_dsn is None:
            raise ValueError("kind 'postgres' needs postgres_dsn")
        return self


class DetectionConfig(StrictModel):
    """Rule directories, loaded recursively (*.yml, *.yaml)."""

    rule_paths: list[Path] = Field(default_factory=list)
    # process: rules run in a child process, so rule evaluation does not compete with ingest
    # for the interpreter lock (about half of the collector's CPU under load). thread: in the
    # collector process (lighter; for small sites and tests).
    isolation: Literal["process", "thread"] = "process"
    # Rule files are checked for changes this often and reloaded (0: only on SIGHUP).
    reload_check_s: int = Field(10, ge=0, le=86_400)
    # Correlation windows are saved to state_dir/detection-state.json this often (and at a
    # clean stop), so a restart keeps long windows.
    state_save_interval_s: int = Field(60, ge=5, le=86_400)
    # The same alert (rule, agent, group, summary) within this window is stored once.
    suppress_window_s: int = Field(600, ge=0, le=7 * 86_400)
    # Alerts of one system and incident category this close in time form one incident.
    incident_window_s: int = Field(3600, ge=60, le=30 * 86_400)
    # Security level (1-5) of each information system, by system id, until dossiers exist.
    system_levels: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    # Severity steps added to alerts on systems of each level.
    level_raise: dict[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=0, le=4)]] = Field(
        default_factory=lambda: {4: 1, 5: 1}
    )


class DossiersConfig(StrictModel):
    """The legal regime the deployment follows, and where the regime data files are."""

    # The id of a file in regime_dir (rules/regimes/): vn-2026 (Law 116/2025, ND 331/2026,
    # ND 333/2026, TCVN 14423:2026) or vn-legacy-2016 (ND 85/2016, TT 12/2022).
    regime: str = Field("vn-2026", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    regime_dir: Path = Path("/usr/share/canhgac/rules/regimes")


class RetentionConfig(StrictModel):
    """How long events are kept, in calendar months (collector/dossiers/retention.py).

    A system's effective retention is the longer of what is configured here and the minimum
    its legal regime sets for its level; an entry in `per_system` shorter than that minimum
    stops the start with a ConfigError. Agents in no system keep `default_months`.
    """

    default_months: int = Field(12, ge=1, le=1200)
    per_system: dict[str, Annotated[int, Field(ge=1, le=1200)]] = Field(default_factory=dict)
    # How often old events are looked for and deleted.
    check_interval_s: int = Field(3600, ge=60, le=7 * 86_400)


class HealthConfig(StrictModel):
    """Agent health metrics (canhgac_collector_agents{state}, spool depths, reported drops)."""

    # An agent whose last contact is older than this counts as down. Agents send a heartbeat
    # every few seconds and keep a stream open, so a few minutes is already a real outage.
    agent_down_after_s: int = Field(300, ge=10, le=7 * 86_400)
    # How often the agent registry is summarised into the metrics.
    interval_s: int = Field(15, ge=1, le=3600)


class FindingsConfig(StrictModel):
    """Compliance findings (`canhgac-collector findings`)."""

    # A system none of whose agents has been seen for this long is reported as silent.
    silent_after_s: int = Field(86_400, ge=60, le=365 * 86_400)
    # The collector recomputes the findings this often (metric canhgac_collector_findings).
    interval_s: int = Field(300, ge=10, le=86_400)


class HttpConfig(StrictModel):
    """The HTTP side (console, REST API, /metrics, /healthz). Loopback by default."""

    enabled: bool = True
    listen: ListenAddress = "127.0.0.1:9441"
    # The REST API's token bucket, per principal: requests per second, and the burst allowed.
    api_rate: float = Field(20.0, gt=0, le=10_000)
    api_burst: int = Field(100, ge=1, le=100_000)


class ForwardDestinationCommon(StrictModel):
    """What every upstream destination has, whatever its kind (collector/forward).

    Each destination has its own outbox queue: a failed item waits backoff_base_s, doubling
    per attempt up to backoff_cap_s (with jitter), and is quarantined after max_attempts
    (`canhgac-collector forward retry` puts it back). `minimise` says what may leave.
    """

    name: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    enabled: bool = True
    max_attempts: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(50, ge=1, le=1000)
    backoff_base_s: float = Field(1.0, gt=0, le=3600)
    backoff_cap_s: float = Field(300.0, gt=0, le=86_400)
    # The queue is also looked at this often (new items wake the worker at once).
    poll_interval_s: float = Field(5.0, gt=0, le=3600)
    minimise: MinimisePolicy = MinimisePolicy()


class NationalJsonDestinationConfig(ForwardDestinationCommon, NationalJsonSettings):
    """kind national_json: JSON over HTTPS with mutual TLS (collector/forward/national.py)."""


class StixTaxiiDestinationConfig(ForwardDestinationCommon, StixTaxiiSettings):
    """kind stix_taxii: STIX 2.1 bundles to a TAXII 2.1 collection (collector/forward/stix.py)."""


class SyslogCefDestinationConfig(ForwardDestinationCommon, SyslogCefSettings):
    """kind syslog_cef: RFC 5424 over TLS with CEF payloads (collector/forward/syslog_cef.py)."""


class ParentGrpcDestinationConfig(ForwardDestinationCommon, ParentGrpcSettings):
    """kind parent_grpc: a parent collector over gRPC (collector/forward/parent.py)."""


# One member per destination kind, told apart by `kind`. A new kind is one line here: a class
# inheriting ForwardDestinationCommon and the kind's settings model (with a `kind` Literal).
DestinationConfig = Annotated[
    NationalJsonDestinationConfig
    | StixTaxiiDestinationConfig
    | SyslogCefDestinationConfig
    | ParentGrpcDestinationConfig,
    Field(discriminator="kind"),
]


class ForwardConfig(StrictModel):
    """Upstream destinations of alerts and incidents (layer 4); none by default."""

    destinations: list[DestinationConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ForwardConfig:
        names = [d.name for d in self.destinations]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"destination names must be unique: {', '.join(repeated)}")
        return self

    def enabled(self) -> list[DestinationConfig]:
        return [d for d in self.destinations if d.enabled]


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class CollectorConfig(StrictModel):
    """Root of the collector's configuration file."""

    # Name of this collector (province or ministry); it appears as the origin of alerts.
    name: str = Field("canhgac", min_length=1, max_length=128)
    state_dir: Path = Path("/var/lib/canhgac/collector")
    ingest: IngestConfig = IngestConfig()
    tls: TlsConfig = TlsConfig()
    storage: StorageConfig = StorageConfig()
    detection: DetectionConfig = DetectionConfig()
    dossiers: DossiersConfig = DossiersConfig()
    retention: RetentionConfig = RetentionConfig()
    findings: FindingsConfig = FindingsConfig()
    health: HealthConfig = HealthConfig()
    http: HttpConfig = HttpConfig()
    forward: ForwardConfig = ForwardConfig()
    logging: LoggingConfig = LoggingConfig()

    def sqlite_path(self) -> Path:
        return self.storage.sqlite_path or self.state_dir / "collector.db"


def load(path: str | Path) -> CollectorConfig:
    return load_config(CollectorConfig, path)


def example_text() -> str:
    """The commented example configuration shipped with the package."""
    return resources.files("collector").joinpath("data/collector.example.yaml").read_text("utf-8")
