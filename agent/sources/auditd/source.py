"""The auditd source: tail the Linux audit log and emit one LogRecord event per record."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import ClassVar

from agent.sources.base import Checkpoint, EventSink, Source, SourceContext, parse_lines
from agent.sources.tailer import (
    FileTailer,
    Opener,
    TailPosition,
    new_lines,
    open_readonly,
)

from .config import AuditdConfig
from .parser import SOURCE_ID, AuditdParser

log = logging.getLogger("canhgac.agent.auditd")

# Events per sink.emit call: bounds memory and the size of one spool transaction.
EMIT_CHUNK = 500
PERMISSION_HINT = (
    "run the agent as root, or set log_group in auditd.conf to a group of the agent user"
)


class AuditdSource(Source):
    """Tails the audit log and emits one event per audit record (see parser.py).

    Contract:
    * The file is followed across rotation (auditd's own `max_log_file_action = rotate`
      renames audit.log to audit.log.1), truncation and restarts: events are emitted with a
      `Checkpoint(key="auditd:<path>")` holding the position just past them, in chunks of at
      most 500, and a restart resumes from it, so nothing handed to the sink is read again.
    * While the file is missing or unreadable, `health.state` is "unavailable" with the reason
      in `health.detail` (retried every `retry_interval` seconds); "running" while it is read.
    * Lines that yield no event are counted by reason in `health.unparsed` (`empty_line`,
      `not_audit_record`), as are lines still parsed but odd (`unterminated_quote`), lines cut at
      `max_line_bytes` (`line_truncated`) and partial lines lost to a rotation
      (`partial_line_dropped`).
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: AuditdConfig | None = None,
        *,
        opener: Opener = open_readonly,
        retry_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.config = config or AuditdConfig()
        self._opener = opener
        self._retry_interval = retry_interval
        self.health.mode = "tail"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        parser = AuditdParser(agent_id=ctx.agent_id, host=ctx.host, clock_ns=ctx.clock_ns)
        tailer = self._tailer(ctx)
        try:
            await self._follow(tailer, parser, sink, stop)
        finally:
            tailer.close()

    def _tailer(self, ctx: SourceContext) -> FileTailer:
        position = None
        if saved := ctx.checkpoints.get(_checkpoint_key(self.config.path)):
            try:
                position = TailPosition.from_json(saved)
            except ValueError:
                # Reading the file again from its start duplicates events; skipping it could
                # lose some. At-least-once wins.
                self.health.count_unparsed("bad_checkpoint")
        return FileTailer(
            self.config.path,
            position=position,
            max_line_bytes=self.config.max_line_bytes,
            poll_interval=self.config.poll_interval_ms / 1000,
            retry_interval=self._retry_interval,
            start_at_end=self.config.read_from == "end",
            opener=self._opener,
        )

    async def _follow(
        self, tailer: FileTailer, parser: AuditdParser, sink: EventSink, stop: asyncio.Event
    ) -> None:
        key = _checkpoint_key(tailer.path)
        chunks = new_lines(
            tailer, stop, self.health, lambda: self._update_health(tailer), max_lines=EMIT_CHUNK
        )
        async for lines, position in chunks:
            problems: list[str] = []
            parse = functools.partial(parser.parse, problems=problems)
            events = parse_lines(lines, parse, self.health, tailer.path)
            for problem in problems:
                self.health.count_unparsed(problem)
            # Emitted even without events, so the checkpoint moves past skipped lines.
            await sink.emit(events, Checkpoint(key=key, value=position.to_json()))
            self.health.events += len(events)

    def _update_health(self, tailer: FileTailer) -> None:
        state, detail = tailer.status.state, tailer.status.detail
        if state == "starting":
            return
        if state == "open":
            self.health.state, self.health.detail = "running", ""
        elif state == "missing":
            self.health.state = "unavailable"
            self.health.detail = f"{tailer.path}: not found (is auditd installed and running?)"
        else:
            if detail == "permission denied":
                detail = f"{detail} ({PERMISSION_HINT})"
            self.health.state, self.health.detail = "unavailable", f"{tailer.path}: {detail}"


def _checkpoint_key(path: str) -> str:
    return f"{SOURCE_ID}:{path}"
