"""Wires the collector's stages into one process on one event loop (the embedded default).

ingest (gRPC) -> store -> bus -> detection -> alerts, plus the HTTP side. Blocking work (the
store, rule evaluation) runs on worker threads; nothing blocking runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CollectorRegistry

from canhgac.netaddr import parse_host_port
from collector.agent_health import AgentHealthMetrics, AgentHealthWorker
from collector.audit.system_events import record_config, record_rules
from collector.bus.local import LocalBus
from collector.config import CollectorConfig
from collector.detection.control import ReloadSummary, describe_rules
from collector.detection.enrich import NS, AlertEnricher, IncidentGrouper, Suppressor
from collector.detection.loader import load_detector
from collector.detection.watch import RuleFileWatcher
from collector.detection.worker import DetectionSettings, DetectionWorker
from collector.dossiers.findings_worker import FindingsWorker
from collector.dossiers.regime import Regime, RegimeRegistry, load_regimes
from collector.dossiers.retention import RetentionWorker, check_retention
from collector.enroll.wiring import EnrollmentWiring
from collector.forward.registry import build_workers
from collector.forward.upstream_service import UpstreamServicer, register_upstream
from collector.ingest.committer import GroupCommitter
from collector.ingest.server import build_server
from collector.ingest.service import IngestService
from collector.metrics import CollectorMetrics
from collector.pki import ServerCredentials, ensure_pki, load_credentials
from collector.storage.registry import open_store
from collector.storage.worker import StoreWorker
from collector.web.app import build_app
from collector.web.live import AlertHub

log = logging.getLogger("canhgac.collector")


def server_credentials(config: CollectorConfig) -> ServerCredentials | None:
    tls = config.tls
    if tls.mode == "insecure_dev":
        return None
    if tls.mode == "files":
        # Both are required by the model in mode "files".
        assert tls.cert_file is not None
        assert tls.key_file is not None
        return load_credentials(tls.cert_file, tls.key_file, tls.ca_file)
    return ensure_pki(config.state_dir / "pki", list(tls.server_names))


def open_configured_store(config: CollectorConfig) -> StoreWorker:
    st = config.storage
    dsn = st.postgres_dsn.get_secret_value() if st.postgres_dsn else None
    store = open_store(st.kind, sqlite_path=config.sqlite_path(), postgres_dsn=dsn)
    return StoreWorker(store)


@dataclass
class CollectorApp:
    """The running collector. `start()` binds the ports; `grpc_port`, `enroll_port` (0 when
    enrollment is off) and `http_port` tell which."""

    config: CollectorConfig
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    clock_ns: Callable[[], int] = time.time_ns
    grpc_port: int = 0
    enroll_port: int = 0
    http_port: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ready: bool = False

    async def start(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = CollectorMetrics.create(self.registry)
        self.store = open_configured_store(cfg)
        version = await self.store.run(self.store.store.migrate)
        log.info("store ready", extra={"fields": {"kind": cfg.storage.kind, "schema": version}})
        self.regimes, self.regime = _load_regime(cfg)
        if self.regime is not None:
            # Refuses to start with a retention shorter than the law's minimum for a level.
            policy = await self.store.run(
                check_retention, self.store.store, cfg.retention, self.regime
            )
            log.info(
                "event retention",
                extra={
                    "fields": {
                        "default_months": policy.default_months,
                        "systems": len(policy.systems),
                    }
                },
            )
        dc = cfg.detection
        state_path = cfg.state_dir / "detection-state.json"
        detector, loaded = load_detector(
            dc.rule_paths,
            self.clock_ns,
            dc.isolation,
            lambda: self.metrics.errors.labels(stage="detection", error_type="process_died").inc(),
            state_path,
        )
        self.metrics.rules_loaded.set(loaded.loaded)
        self.metrics.rule_errors.set(len(loaded.errors))
        # Rules as loaded at start, for the console until the first reload reports its own.
        self.rules_at_start = ReloadSummary(
            loaded.loaded,
            [str(e) for e in loaded.errors],
            [],
            [],
            describe_rules(dc.rule_paths, loaded.errors),
        )
        # The configuration and the rules in force go into the audit chain (evidence).
        await self.store.run(record_config, self.store.store, cfg, at_ns=self.clock_ns())
        await self.store.run(
            record_rules,
            self.store.store,
            cfg.name,
            self.rules_at_start,
            at_ns=self.clock_ns(),
            reload=False,
        )
        self.hub = AlertHub(self.metrics)
        self.bus = LocalBus(cfg.ingest.bus_capacity)
        self.metrics.bus_capacity.set(cfg.ingest.bus_capacity)
        # Upstream forwarding (layer 4): one worker per destination, fed by the outbox.
        self.forward = build_workers(
            cfg.forward,
            cfg.name,
            self.store,
            self.metrics.forward,
            state_dir=cfg.state_dir,
            clock_ns=self.clock_ns,
        )
        self.detection = DetectionWorker(
            self.bus,
            detector,
            self.store,
            self.metrics,
            cfg.name,
            settings=DetectionSettings(dc.rule_paths, state_path, dc.state_save_interval_s),
            enrich=self._enricher(),
            outbox=self.forward.names,
            on_enqueued=self.forward.notify,
            on_stored=self.hub.publish,
        )
        self.committer = GroupCommitter(self.store)
        self.committer.start()
        credentials = server_credentials(cfg)
        self.enrollment = EnrollmentWiring(
            cfg, credentials, self.store, self.metrics, self.clock_ns
        )
        service = IngestService(
            cfg.ingest,
            self.store,
            self.committer,
            self.bus,
            self.metrics,
            self.clock_ns,
            mutual_tls=credentials is not None,
        )
        self.server, self.grpc_port = build_server(
            cfg,
            service,
            credentials,
            streams=self.enrollment.streams,
            renew=self.enrollment.renew,
        )
        # Child collectors forward their alerts here (parent tier, collector/forward).
        register_upstream(
            self.server,
            UpstreamServicer(
                self.store,
                self.metrics,
                outbox=self.forward.names,
                on_enqueued=self.forward.notify,
                mutual_tls=credentials is not None,
            ),
        )
        await self.server.start()
        await self.enrollment.start()
        self.enroll_port = self.enrollment.port
        self._tasks.append(asyncio.create_task(self.detection.run(), name="detection"))
        self.forward.start()
        self._health_stop = asyncio.Event()
        self.agent_health = AgentHealthWorker(
            self.store,
            AgentHealthMetrics.create(self.metrics.registry),
            down_after_s=cfg.health.agent_down_after_s,
            clock_ns=self.clock_ns,
        )
        self._tasks.append(
            asyncio.create_task(
                self.agent_health.run(self._health_stop, cfg.health.interval_s),
                name="agent-health",
            )
        )
        if self.regime is not None:
            self._retention_stop = asyncio.Event()
            retention = RetentionWorker(
                self.store,
                cfg.retention,
                self.regime,
                clock_ns=self.clock_ns,
                on_deleted=lambda _system, n: self.metrics.discarded.labels(
                    stage="retention", reason="expired", intentional="true"
                ).inc(n),
            )
            self._tasks.append(
                asyncio.create_task(retention.run(self._retention_stop), name="retention")
            )
            self.findings = FindingsWorker(
                self.store, cfg, self.regime, self.metrics.findings, regimes=self.regimes
            )
            self._tasks.append(
                asyncio.create_task(
                    self.findings.run(self._retention_stop, cfg.findings.interval_s),
                    name="findings",
                )
            )
        if dc.reload_check_s:
            watcher = RuleFileWatcher(dc.rule_paths, self.detection.request_reload)
            self._tasks.append(
                asyncio.create_task(watcher.run(dc.reload_check_s), name="rule-watch")
            )
        if cfg.http.enabled:
            await self._start_http()
        self._ready = True
        log.info(
            "collector running",
            extra={
                "fields": {
                    "grpc_port": self.grpc_port,
                    "enroll_port": self.enroll_port,
                    "http_port": self.http_port,
                }
            },
        )

    def _enricher(self) -> AlertEnricher:
        dc, store = self.config.detection, self.store

        def lookup(agent_id: str) -> tuple[str, int]:
            system_id = store.store.system_of_agent(agent_id) or ""
            if not system_id:
                return "", 0
            system = store.store.get_system(system_id)
            level = system and (system.approved_level or system.proposed_level)
            return system_id, int(level or dc.system_levels.get(system_id, 0))

        async def system_of(agent_id: str) -> tuple[str, int]:
            return await store.run(lookup, agent_id)

        return AlertEnricher(
            system_of=system_of,
            level_raise=dc.level_raise,
            suppressor=Suppressor(dc.suppress_window_s * NS),
            incidents=IncidentGrouper(dc.incident_window_s * NS),
            on_suppressed=lambda a: self.metrics.alerts_suppressed.labels(rule_id=a.rule_id).inc(),
        )

    def request_reload(self) -> None:
        """Reload the detection rules (SIGHUP), between two batches."""
        log.info("reloading detection rules")
        self.detection.request_reload()

    async def _start_http(self) -> None:
        host, port = parse_host_port(self.config.http.listen, allow_zero=True)
        app = build_app(
            self.config.name,
            self.store,
            self.metrics,
            lambda: self._ready,
            state_dir=self.config.state_dir,
            listen=self.config.http.listen,
            hub=self.hub,
            regime=self.regime,
            findings=lambda: self.findings.latest if self.regime is not None else [],
            rules_status=lambda: self.detection.last_reload or self.rules_at_start,
            api_rate=self.config.http.api_rate,
            api_burst=self.config.http.api_burst,
            config=self.config,
        )
        uv_config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self.http = uvicorn.Server(uv_config)
        self._tasks.append(asyncio.create_task(self.http.serve(), name="http"))
        while not self.http.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # surfaces the bind error
                raise OSError(f"http server did not start on {self.config.http.listen}")
            # uvicorn exposes only a `started` flag, no event to await: poll it briefly.
            await asyncio.sleep(0.02)
        sockets = [s for srv in self.http.servers for s in srv.sockets]
        self.http_port = sockets[0].getsockname()[1] if sockets else port

    async def wait(self) -> None:
        await self.server.wait_for_termination()

    async def stop(self, grace: float = 5.0) -> None:
        self._ready = False
        await self.enrollment.stop(grace)
        await self.server.stop(grace)
        await self.committer.stop()
        # Ingest has stopped: let detection finish what is stored, and save its windows.
        await self.detection.drain(timeout=grace * 2)
        if self.config.http.enabled:
            self.hub.close()  # ends the live streams: uvicorn waits for open responses
            self.http.should_exit = True
        self._health_stop.set()
        if self.regime is not None:
            self._retention_stop.set()
        for task in self._tasks:
            if task.get_name() in ("detection", "rule-watch"):
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.forward.stop()
        self.detection.close()
        self.store.close()


def _load_regime(cfg: CollectorConfig) -> tuple[RegimeRegistry | None, Regime | None]:
    """The configured legal regime. An unknown id or a broken file stops the start with the
    reason; a missing directory only warns (the registry and levels work without it)."""
    directory = cfg.dossiers.regime_dir
    if not directory.is_dir():
        log.warning(
            "legal regime data not found: level calculation and legal clocks are unavailable",
            extra={"fields": {"regime_dir": str(directory)}},
        )
        return None, None
    registry = load_regimes(directory)
    regime = registry.select(cfg.dossiers.regime)
    log.info("legal regime", extra={"fields": {"regime": regime.id}})
    return registry, regime


async def run_forever(config: CollectorConfig) -> None:
    app = CollectorApp(config)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.request_reload)
    await stop.wait()
    log.info("stopping")
    await app.stop()
