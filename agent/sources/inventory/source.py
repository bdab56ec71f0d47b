"""The inventory source: one host inventory event at start and whenever the inventory changes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from agent.sources.base import Checkpoint, EventSink, Source, SourceContext
from canhgac.strictmodel import Field, StrictModel
from canhgac.v1 import events_pb2

from .collect import HostRoots, Inventory, InventoryCollector, Uname, os_uname
from .interfaces import Ipv4Getter, netlink_ipv4_addresses
from .packages import CommandRunner

SOURCE_ID = "inventory"
CHECKPOINT_KEY = "inventory:digest"


class InventoryConfig(StrictModel):
    """Configuration of the inventory source."""

    check_interval_s: int = Field(default=600, ge=60, le=86_400)
    # Send the inventory after every agent start even when it equals the last one sent.
    send_at_start: bool = True
    max_packages: int = Field(default=20_000, ge=0, le=100_000)


class InventorySource(Source):
    """Emits an InventoryEvent (category "host", type "info", action "inventory").

    Contract:
    * At start, and then every `check_interval_s`, the inventory is collected and its digest
      compared with the last one sent (persisted as Checkpoint "inventory:digest" together
      with the event). An event is emitted when the digest differs, and at start also when it
      does not if `send_at_start`.
    * Between full checks, the mtimes of the dpkg status file, the rpm database directory and
      <etc>/passwd are compared every `watch_interval` seconds (stat only); a change triggers
      a collection at once.
    * What an emitted inventory left out is counted by reason in health.unparsed
      (e.g. "packages_truncated", "passwd_bad_line"); health.mode names the IPv4 address
      method ("netlink" or the "fib_trie" fallback).
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: InventoryConfig | None = None,
        *,
        roots: HostRoots | None = None,
        uname: Callable[[], Uname] = os_uname,
        hostname: Callable[[], str] = socket.gethostname,
        ipv4_getter: Ipv4Getter = netlink_ipv4_addresses,
        rpm_runner: CommandRunner | None = None,
        watch_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.config = config or InventoryConfig()
        self.roots = roots or HostRoots()
        self._uname = uname
        self._hostname = hostname
        self._ipv4_getter = ipv4_getter
        self._rpm_runner = rpm_runner
        self._watch_interval = watch_interval
        self.collections = 0

    def collector(self) -> InventoryCollector:
        return InventoryCollector(
            self.roots,
            max_packages=self.config.max_packages,
            uname=self._uname,
            hostname=self._hostname,
            ipv4_getter=self._ipv4_getter,
            rpm_runner=self._rpm_runner,
        )

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        collector = self.collector()
        loop = asyncio.get_running_loop()
        last_sent = ctx.checkpoints.get(CHECKPOINT_KEY)
        force = self.config.send_at_start
        while not stop.is_set():
            watched = await asyncio.to_thread(self._watched_mtimes)
            inventory = await asyncio.to_thread(collector.collect)
            self.health.state, self.health.mode = "running", inventory.ipv4_method
            if force or inventory.digest != last_sent:
                await sink.emit(
                    [self._event(ctx, inventory)],
                    Checkpoint(key=CHECKPOINT_KEY, value=inventory.digest),
                )
                last_sent = inventory.digest
                self.health.events += 1
                for reason, n in inventory.problems.items():
                    self.health.count_unparsed(reason, n)
            force = False
            self.collections += 1
            deadline = loop.time() + self.config.check_interval_s
            while not stop.is_set() and loop.time() < deadline:
                wait = min(self._watch_interval, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0))
                if stop.is_set() or await asyncio.to_thread(self._watched_mtimes) != watched:
                    break

    def _watched_mtimes(self) -> tuple[int, ...]:
        paths: tuple[Path, ...] = (
            self.roots.var_lib / "dpkg" / "status",
            self.roots.var_lib / "rpm",
            self.roots.etc / "passwd",
        )
        out: list[int] = []
        for path in paths:
            try:
                out.append(path.stat().st_mtime_ns)
            except OSError:
                out.append(-1)
        return tuple(out)

    def _event(self, ctx: SourceContext, inventory: Inventory) -> events_pb2.Event:
        return ctx.event(
            SOURCE_ID, category="host", type="info", action="inventory", inventory=inventory.payload
        )
