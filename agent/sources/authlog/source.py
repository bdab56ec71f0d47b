"""The authentication-log source: tail auth.log / secure and emit AuthEvents."""

from __future__ import annotations

import asyncio
import logging
from datetime import tzinfo
from typing import ClassVar, Literal

from agent.sources.base import Checkpoint, EventSink, Source, SourceContext, parse_lines
from agent.sources.tailer import (
    DEFAULT_MAX_LINE_BYTES,
    FileTailer,
    Opener,
    TailPosition,
    new_lines,
    open_readonly,
)
from canhgac.strictmodel import Field, StrictModel, field_validator

from .parser import SOURCE_ID, AuthLogParser

log = logging.getLogger("canhgac.agent.authlog")

# Events per sink.emit call: bounds memory and the size of one spool transaction.
EMIT_CHUNK = 500
PERMISSION_HINT = "run as root or add the agent user to group adm"


class AuthLogConfig(StrictModel):
    """Configuration of the auth-log source."""

    paths: list[str] = Field(
        default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"], min_length=1
    )
    poll_interval_ms: int = Field(default=250, ge=10, le=10_000)
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=256, le=16 * 1024 * 1024)
    # Where to start in a file met for the first time (no checkpoint): "beginning" ships the
    # history already in the file, "end" only what is written from now on.
    read_from: Literal["beginning", "end"] = "beginning"

    @field_validator("paths")
    @classmethod
    def _unique_absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        if len(set(paths)) != len(paths):
            raise ValueError("a path is listed twice")
        return paths


class AuthLogSource(Source):
    """Tails every configured auth-log path and emits one AuthEvent per recognised line.

    Contract:
    * Each path is followed on its own (rotation, truncation, a path that appears later), and
      its events are emitted with a `Checkpoint(key="authlog:<path>")` holding the position
      just past them, in chunks of at most 500 events. On start each path resumes from its
      checkpoint in `ctx.checkpoints`: nothing handed to the sink is read again.
    * A path that exists but cannot be read is named with the reason in `health.detail`; the
      source keeps running for the other paths and retries the unreadable one every
      `retry_interval` seconds. `health.state` is "running" while at least one path is being
      read and "unavailable" otherwise.
    * Lines that yield no event are counted by reason in `health.unparsed` (see `Skipped`),
      as are lines cut at `max_line_bytes` ("line_truncated", still parsed) and partial lines
      lost to a rotation or truncation ("partial_line_dropped").
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: AuthLogConfig | None = None,
        *,
        tz: tzinfo | None = None,
        opener: Opener = open_readonly,
        retry_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.config = config or AuthLogConfig()
        self._tz = tz
        self._opener = opener
        self._retry_interval = retry_interval
        self._tailers: list[FileTailer] = []
        self.health.mode = "tail"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        parser = AuthLogParser(
            agent_id=ctx.agent_id, default_host=ctx.host, clock_ns=ctx.clock_ns, tz=self._tz
        )
        self._tailers = [self._tailer(ctx, path) for path in self.config.paths]
        try:
            async with asyncio.TaskGroup() as group:
                for tailer in self._tailers:
                    group.create_task(self._follow(tailer, parser, sink, stop))
        finally:
            for tailer in self._tailers:
                tailer.close()

    def _tailer(self, ctx: SourceContext, path: str) -> FileTailer:
        position = None
        if saved := ctx.checkpoints.get(_checkpoint_key(path)):
            try:
                position = TailPosition.from_json(saved)
            except ValueError:
                # Reading the file again from its start duplicates events; skipping it could
                # lose some. At-least-once wins.
                self.health.count_unparsed("bad_checkpoint")
        return FileTailer(
            path,
            position=position,
            max_line_bytes=self.config.max_line_bytes,
            poll_interval=self.config.poll_interval_ms / 1000,
            retry_interval=self._retry_interval,
            start_at_end=self.config.read_from == "end",
            opener=self._opener,
        )

    async def _follow(
        self, tailer: FileTailer, parser: AuthLogParser, sink: EventSink, stop: asyncio.Event
    ) -> None:
        key = _checkpoint_key(tailer.path)
        chunks = new_lines(tailer, stop, self.health, self._update_health, max_lines=EMIT_CHUNK)
        async for lines, position in chunks:
            events = parse_lines(lines, parser.parse, self.health, tailer.path)
            # Emitted even without events, so the checkpoint moves past skipped lines.
            await sink.emit(events, Checkpoint(key=key, value=position.to_json()))
            self.health.events += len(events)

    def _update_health(self) -> None:
        if any(t.status.state == "starting" for t in self._tailers):
            return  # judge only once every path has been looked at
        reading = [t for t in self._tailers if t.status.state == "open"]
        problems = [
            f"{t.path}: {_explain(t.status.detail)}"
            for t in self._tailers
            if t.status.state in ("unreadable", "error")
        ]
        if reading:
            self.health.state = "running"
            self.health.detail = "; ".join(problems)
            return
        missing = [f"{t.path}: not found" for t in self._tailers if t.status.state == "missing"]
        if problems or missing:
            self.health.state = "unavailable"
            self.health.detail = "; ".join(problems + missing)


def _checkpoint_key(path: str) -> str:
    return f"{SOURCE_ID}:{path}"


def _explain(detail: str) -> str:
    return f"{detail} ({PERMISSION_HINT})" if detail == "permission denied" else detail
