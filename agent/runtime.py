"""Runs the agent: sources -> spool -> shipper, on one event loop.

A source that cannot run on this host (missing file, no permission, no kernel feature) is
reported in the agent's status with the reason, and the other sources keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import time
from dataclasses import dataclass, field

from agent.config import AgentConfig
from agent.enroll.identity import IdentityFiles
from agent.enroll.renewer import CertificateRenewer
from agent.guard import guard_sources
from agent.memory import release_free_memory
from agent.shipper import Shipper
from agent.sources.agentstatus.source import AgentStatusSource, StatusSnapshot
from agent.sources.base import EventSink, Source, SourceContext, SourceHealth
from agent.spool import SqliteSpool, StartupReport
from agent.spooling import AsyncSpool
from agent.status import StatusReporter
from canhgac.errors import CanhGacError, SourceUnavailableError, TlsError
from canhgac.v1 import events_pb2

log = logging.getLogger("canhgac.agent")

TRIM_INTERVAL_S = 60.0


def build_sources(config: AgentConfig, snapshot: StatusSnapshot) -> list[Source]:
    """The configured sources; `snapshot` gives the agent_status source the agent's status.

    Each source's module is imported only when the source is on: a source that is off costs
    no memory (the network sensor's alone is about 1 MB).
    """
    sc = config.sources
    sources: list[Source] = []
    if sc.authlog is not None:
        from agent.sources.authlog.source import AuthLogSource

        sources.append(AuthLogSource(sc.authlog))
    if sc.process is not None:
        from agent.sources.process import ProcessSource

        sources.append(ProcessSource(sc.process))
    if sc.fim is not None:
        from agent.sources.fim import FileIntegritySource

        sources.append(FileIntegritySource(sc.fim))
    if sc.sockets is not None:
        from agent.sources.sockets import SocketSource

        sources.append(SocketSource(sc.sockets))
    if sc.inventory is not None:
        from agent.sources.inventory import InventorySource

        sources.append(InventorySource(sc.inventory))
    if sc.netsensor is not None:
        from agent.netsensor.source import NetSensorSource

        sources.append(NetSensorSource(sc.netsensor))
    if sc.journald is not None:
        from agent.sources.journald.source import JournaldAuthSource

        sources.append(JournaldAuthSource(sc.journald))
    if sc.auditd is not None:
        from agent.sources.auditd.source import AuditdSource

        sources.append(AuditdSource(sc.auditd))
    if sc.syslog is not None:
        from agent.sources.syslog.source import SyslogSource

        sources.append(SyslogSource(sc.syslog))
    if sc.zeek is not None:
        from agent.sources.zeek.source import ZeekSource

        sources.append(ZeekSource(sc.zeek))
    if sc.devicelog is not None:
        from agent.sources.devicelog.source import DeviceLogSource

        sources.append(DeviceLogSource(sc.devicelog))
    if sc.agent_status is not None:
        sources.append(AgentStatusSource(sc.agent_status, snapshot=snapshot))
    return sources


def effective_agent_id(config: AgentConfig) -> str:
    """The id in this agent's certificate once enrolled (the collector knows it by that),
    else the configured one."""
    if not config.collector.insecure_dev:
        files = IdentityFiles.for_config(config)
        if files.exists():
            try:
                return files.load().agent_id
            except TlsError:
                pass  # reported by the shipper when it tries to connect
    return config.resolved_agent_id()


@dataclass
class AgentRuntime:
    """The running agent."""

    config: AgentConfig
    sources: list[Source] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, stop: asyncio.Event) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        spool = SqliteSpool(cfg.state_dir / "spool.db", max_bytes=cfg.spool.max_bytes)
        report = spool.startup_report()
        self.spool = AsyncSpool(
            spool,
            batch_max_events=cfg.shipper.batch_max_events,
            batch_max_delay_ms=cfg.shipper.batch_max_delay_ms,
        )
        self.status = StatusReporter(started_ns=time.time_ns())
        if report.quarantined or not report.durable:
            await self._report_spool_damage(report)
        self.sources = build_sources(cfg, self._status_snapshot)
        self.agent_id = effective_agent_id(cfg)
        ctx = SourceContext(
            agent_id=self.agent_id,
            host=socket.gethostname(),
            clock_ns=time.time_ns,
            checkpoints=await self.spool.checkpoints(),
        )
        self.sinks = guard_sources(
            [s.source_id for s in self.sources], self.spool, cfg.limits, self.status.drops
        )
        for src in self.sources:
            src_dir = cfg.state_dir / "sources" / src.source_id
            src_dir.mkdir(parents=True, exist_ok=True)
            src_ctx = dataclasses.replace(ctx, state_dir=src_dir)
            self._tasks.append(
                asyncio.create_task(
                    self._run_source(src, src_ctx, self.sinks[src.source_id], stop),
                    name=src.source_id,
                )
            )
        self.shipper = Shipper(cfg, self.spool, self.status, self.health)
        self._tasks.append(asyncio.create_task(self.shipper.run(stop), name="shipper"))
        if not cfg.collector.insecure_dev:
            files = IdentityFiles.for_config(cfg)
            self.renewer = CertificateRenewer(
                cfg.collector,
                files,
                self.shipper.reconnect,
                log_level=cfg.logging.level,
                log_format=cfg.logging.format,
            )
            self._tasks.append(asyncio.create_task(self.renewer.run(stop), name="renewer"))

    async def _report_spool_damage(self, report: StartupReport) -> None:
        """Say loudly, and to the collector, that the spool was damaged and what was kept."""
        parts = [
            f"{q.path} moved to {', '.join(map(str, q.moved_to))}: {q.reason}"
            for q in report.quarantined
        ]
        if not report.durable:
            parts.append(f"spool is in memory only: {report.detail}")
        detail = "; ".join(parts)
        log.error("spool damaged on start: %s", detail)
        state = events_pb2.SourceState(source="spool", state="damaged", detail=detail)
        status = events_pb2.AgentStatus(sources=[state])
        status.drops.add(source="spool", reason="quarantined_files", count=len(report.quarantined))
        await self.spool.emit(
            [self.status.event(effective_agent_id(self.config), socket.gethostname(), status)]
        )

    def health(self) -> dict[str, SourceHealth]:
        return {s.source_id: s.health for s in self.sources}

    async def _status_snapshot(self) -> events_pb2.AgentStatus:
        stats = await self.spool.stats()
        return self.status.build(self.health(), stats.events, stats.bytes, stats.drops)

    async def _run_source(
        self, src: Source, ctx: SourceContext, sink: EventSink, stop: asyncio.Event
    ) -> None:
        try:
            await src.run(ctx, sink, stop)
        except SourceUnavailableError as exc:
            src.health.state, src.health.detail = "unavailable", str(exc)
            log.warning("source %s unavailable: %s", src.source_id, exc)
        except CanhGacError as exc:
            src.health.state, src.health.detail = "failed", str(exc)
            log.error("source %s failed: %s", src.source_id, exc)
        except Exception as exc:  # one broken source must not stop the agent
            src.health.state, src.health.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("source %s crashed", src.source_id)

    def describe_sources(self) -> list[str]:
        return [
            f"{s.source_id}: {s.health.state}"
            + (f" ({s.health.detail})" if s.health.detail else "")
            for s in self.sources
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)
        self.spool.close()


async def release_memory_until(stop: asyncio.Event, interval_s: float = TRIM_INTERVAL_S) -> None:
    """Hand the C heap's free pages back to the kernel every `interval_s` until stop: the
    start-up work (baseline, inventory) frees several MB that glibc would otherwise keep."""
    while True:
        release_free_memory()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if stop.is_set():
            return


async def run_forever(config: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = AgentRuntime(config)
    await runtime.start(stop)
    log.info("agent running", extra={"fields": {"agent_id": runtime.agent_id}})
    # Say once, a moment after start, which sources run and which cannot (and why).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=1.0)
    for line in runtime.describe_sources():
        log.info("source %s", line)
    await release_memory_until(stop)
    log.info("stopping")
    await runtime.stop()
