"""The service-syslog source: tail the host's syslog files and services' own logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import tzinfo
from typing import ClassVar

from agent.sources.authlog.parser import PROGRAM_PARSERS
from agent.sources.base import Checkpoint, EventSink, Source, SourceContext, parse_lines
from agent.sources.tailer import FileTailer, Opener, TailPosition, new_lines, open_readonly

from .config import ALL_PROGRAMS, OWN_FORMAT_PROGRAMS, SyslogConfig, SyslogFile
from .parser import (
    SOURCE_ID,
    ClamavLogParser,
    LineParser,
    SyslogLineParser,
    VsftpdLogParser,
)

log = logging.getLogger("canhgac.agent.syslog")

# Events per sink.emit call: bounds memory and the size of one spool transaction.
EMIT_CHUNK = 500
PERMISSION_HINT = "run as root or add the agent user to group adm"


class SyslogSource(Source):
    """Tails every configured file and emits one LogRecord event per kept line.

    Contract (that of the auth-log source, whose tailer it uses):
    * Each file is followed on its own (rotation, truncation, a path that appears later), and
      its events are emitted with a `Checkpoint(key="syslog:<path>")` holding the position just
      past them, in chunks of at most 500 events; on start each file resumes from its
      checkpoint, so nothing handed to the sink is read again and nothing is skipped.
    * Syslog lines of programs outside the allow-list are counted ("program_not_selected"),
      never turned into events; other lines that yield no event are counted by reason too
      (`Skipped`), as are cut lines ("line_truncated") and partial lines lost to a
      rotation ("partial_line_dropped"); a line the parser fails on is counted
      ("parser_error") and passed, never retried for ever.
    * `health.state` is "running" while at least one file is read, "unavailable" (with each
      file's reason in `health.detail`) while none exists or can be read.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: SyslogConfig | None = None,
        *,
        tz: tzinfo | None = None,
        opener: Opener = open_readonly,
        retry_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.config = config or SyslogConfig()
        self._tz = tz
        self._opener = opener
        self._retry_interval = retry_interval
        self._tailers: list[FileTailer] = []
        self.health.mode = "tail"

    def parser_for(self, ctx: SourceContext, file: SyslogFile) -> LineParser:
        """The parser of one configured file."""
        if file.format == "vsftpd":
            program = file.program or OWN_FORMAT_PROGRAMS["vsftpd"]
            return VsftpdLogParser(ctx, program=program, tz=self._tz)
        if file.format == "clamav":
            program = file.program or OWN_FORMAT_PROGRAMS["clamav"]
            return ClamavLogParser(ctx, program=program, tz=self._tz)
        programs = self.config.programs
        skip = PROGRAM_PARSERS if self.config.skip_authlog_programs else ()
        return SyslogLineParser(
            ctx,
            programs=None if ALL_PROGRAMS in programs else programs,
            skip=skip,
            tz=self._tz,
        )

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        files = self.config.all_files()
        self._tailers = [self._tailer(ctx, f.path) for f in files]
        try:
            async with asyncio.TaskGroup() as group:
                for tailer, file in zip(self._tailers, files, strict=True):
                    parser = self.parser_for(ctx, file)
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
        self, tailer: FileTailer, parser: LineParser, sink: EventSink, stop: asyncio.Event
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
            return  # judge only once every file has been looked at
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
