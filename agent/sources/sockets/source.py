"""The sockets source: poll the kernel's socket tables, report listening ports and connections."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import ClassVar

from agent.sources.base import EventSink, Source, SourceContext
from canhgac.errors import SourceUnavailableError
from canhgac.strictmodel import Field, StrictModel
from canhgac.v1 import events_pb2

from .diag import SockDiag
from .owners import SocketOwners, UserNames
from .procnet import TABLES, ByteOrder, ParseError, SocketEntry, parse_table
from .tracker import WANTED_STATES, Observation, SocketTracker

SOURCE_ID = "sockets"
EMIT_CHUNK = 500

_EVENT_TYPES = {"listen": "start", "listen_closed": "end", "connection_opened": "connection"}


class SocketConfig(StrictModel):
    """Configuration of the sockets source."""

    poll_interval_ms: int = Field(default=5000, ge=1000, le=600_000)
    # Also report connections accepted on our listening ports (busy servers: many events).
    report_inbound: bool = False
    # Report listeners on 127.0.0.0/8 / ::1 and connections to them.
    include_loopback: bool = False
    max_tracked: int = Field(default=65536, ge=16, le=1_048_576)


class SocketSource(Source):
    """Polls the kernel's TCP and UDP socket tables and emits SocketEvents (see SocketTracker).

    The tables are read through netlink (sock_diag, diag.py) when the source reads the real
    /proc, and from <proc_root>/net/{tcp,tcp6,udp,udp6} otherwise or when the kernel refuses
    netlink; `health.mode` says which ("sock_diag" or "procfs-poll") and `health.detail` why
    procfs is read on a real host.

    Contract:
    * The first poll reports every listening TCP and bound UDP socket and every existing
      outbound connection once (the host's baseline); later polls report only changes.
    * Events carry the owning pid, executable and name when a process holding the socket is
      found (fd walk, done only for sockets about to be reported), and the user from the
      table's uid column resolved through <etc_root>/passwd.
    * Header: category "network"; type/action "start"/"listen", "end"/"listen_closed",
      "connection"/"connection_opened".
    * Unparseable lines are counted by reason in health.unparsed, as are sockets left
      unreported because `max_tracked` keys are remembered ("tracking_limit").
    * If no socket table can be read, raises SourceUnavailableError naming why.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: SocketConfig | None = None,
        *,
        proc_root: Path = Path("/proc"),
        etc_root: Path = Path("/etc"),
        byteorder: ByteOrder = sys.byteorder,
        netlink: bool | None = None,
    ) -> None:
        """`netlink`: read the tables through sock_diag (True), from procfs (False), or
        through sock_diag when `proc_root` is the real /proc (None)."""
        super().__init__()
        self.config = config or SocketConfig()
        self._proc = proc_root
        self._byteorder = byteorder
        self.tracker = SocketTracker(
            report_inbound=self.config.report_inbound,
            include_loopback=self.config.include_loopback,
            max_tracked=self.config.max_tracked,
        )
        self.owners = SocketOwners(proc_root)
        self._users = UserNames(etc_root / "passwd")
        use_netlink = proc_root == Path("/proc") if netlink is None else netlink
        self._diag: SockDiag | None = SockDiag() if use_netlink else None
        self._fallback_reason = ""
        self.health.mode = "sock_diag" if use_netlink else "procfs-poll"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        interval = self.config.poll_interval_ms / 1000
        try:
            while not stop.is_set():
                events = await asyncio.to_thread(self.poll, ctx)
                for i in range(0, len(events), EMIT_CHUNK):
                    await sink.emit(events[i : i + EMIT_CHUNK])
                self.health.events += len(events)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        finally:
            if self._diag is not None:
                self._diag.close()

    def poll(self, ctx: SourceContext) -> list[events_pb2.Event]:
        """One full read of the tables and the events it yields. Blocking: run in a thread."""
        now = ctx.clock_ns()
        entries = self._read_tables()
        observations = self.tracker.update(entries)
        if self.tracker.limited:
            self.health.count_unparsed("tracking_limit", self.tracker.limited)
        self.owners.resolve(o.entry.inode for o in observations if o.action != "listen_closed")
        events = [self._event(ctx, now, o) for o in observations]
        self.owners.retain({e.inode for e in entries})
        return events

    def _read_tables(self) -> list[SocketEntry]:
        if self._diag is not None:
            try:
                return self._read_netlink(self._diag)
            except OSError as exc:
                # Not on this kernel or in this sandbox: procfs from now on, saying why.
                self._diag.close()
                self._diag = None
                self.health.mode = "procfs-poll"
                self._fallback_reason = f"sock_diag refused ({exc.strerror or exc}); read procfs"
        return self._read_procfs()

    def _read_netlink(self, diag: SockDiag) -> list[SocketEntry]:
        entries: list[SocketEntry] = []
        for transport, wanted in WANTED_STATES.items():
            entries.extend(diag.read(transport, wanted))
        self.health.state = "running"
        self.health.detail = ""
        return entries

    def _read_procfs(self) -> list[SocketEntry]:
        entries: list[SocketEntry] = []
        problems: list[str] = []
        for name, transport in TABLES:
            path = self._proc / "net" / name
            try:
                text = path.read_text(encoding="ascii", errors="replace")
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
                continue
            wanted = WANTED_STATES[transport]
            for row in parse_table(text, transport, self._byteorder, wanted):
                if isinstance(row, ParseError):
                    self.health.count_unparsed(row.reason)
                else:
                    entries.append(row)
        if len(problems) == len(TABLES):
            self.health.state = "unavailable"
            self.health.detail = "; ".join(problems)
            raise SourceUnavailableError(
                "cannot read any socket table ("
                + "; ".join(problems)
                + "); the agent needs procfs mounted at "
                + f"{self._proc} and read access to it"
            )
        self.health.state = "running"
        # tcp6/udp6 are absent when IPv6 is disabled: worth saying, not worth stopping for.
        self.health.detail = "; ".join(filter(None, (self._fallback_reason, *problems)))
        return entries

    def _event(self, ctx: SourceContext, now: int, o: Observation) -> events_pb2.Event:
        e = o.entry
        payload = events_pb2.SocketEvent(
            transport=e.transport,
            local_ip=e.local_ip,
            local_port=e.local_port,
            state="UNCONN" if e.transport == "udp" and o.direction == "listen" else e.state,
            direction=o.direction,
            user=self._users.name(e.uid),
        )
        if o.direction != "listen":
            payload.remote_ip = e.remote_ip
            payload.remote_port = e.remote_port
        owner = self.owners.owner(e.inode)
        if owner is not None:
            payload.pid = owner.pid
            payload.process_executable = owner.executable
            payload.process_name = owner.name
        outcome = events_pb2.OUTCOME_SUCCESS
        if e.state == "SYN_SENT":
            outcome = events_pb2.OUTCOME_UNKNOWN  # the handshake has not completed yet
        return ctx.event(
            SOURCE_ID,
            category="network",
            type=_EVENT_TYPES[o.action],
            action=o.action,
            time_ns=now,
            outcome=outcome,
            socket=payload,
        )
