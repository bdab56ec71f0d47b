"""The FIM tests' helpers: a sink that sorts by action, fixture /etc, config, a running source
(started once its start-up scan is done)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agent.sources.base import SourceContext
from agent.sources.fim import FileIntegritySource, FimConfig
from canhgac.v1 import events_pb2
from tests.agent.sources import harness
from tests.agent.sources.harness import CLOCK_NS, wait_until


class CollectingSink(harness.CollectingSink):
    def actions(self, path: Path | str | None = None) -> list[str]:
        return [e.action for e in self.events if path is None or e.file.path == str(path)]

    def of(self, action: str) -> list[events_pb2.Event]:
        return [e for e in self.events if e.action == action]


def make_etc(tmp_path: Path) -> Path:
    etc = tmp_path / "etcroot"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nalice:x:1000:\ndaemon:x:1:\n")
    return etc


def config(*paths: Path, **kw: object) -> FimConfig:
    data: dict[str, object] = {
        "paths": [str(p) for p in paths],
        "home_authorized_keys": False,
        "settle_ms": 50,
    }
    data.update(kw)
    return FimConfig.model_validate(data)


def context(state_dir: Path | None = None) -> SourceContext:
    return SourceContext(
        agent_id="agent-1", host="host-1", clock_ns=lambda: CLOCK_NS, state_dir=state_dir
    )


@asynccontextmanager
async def running(
    source: FileIntegritySource, sink: CollectingSink, ctx: SourceContext | None = None
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(ctx or context(), sink, stop))
    try:
        # Started once the start-up scan is done: the first run ends it with a summary.
        await wait_until(lambda: task.done() or source.health.state == "running")
        await wait_until(lambda: task.done() or source.scans_completed > 0)
        if task.done():
            task.result()
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
