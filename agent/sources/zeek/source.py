"""The Zeek log source: follow Zeek's current logs on a sensor host, emit LogRecord events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import ClassVar

from agent.sources.base import Checkpoint, EventSink, Source, SourceContext, parse_lines
from agent.sources.tailer import FileTailer, Opener, TailPosition, new_lines, open_readonly

from .config import ZeekConfig
from .parser import SOURCE_ID, TsvHeader, ZeekLogParser

logger = logging.getLogger("canhgac.agent.zeek")

# Events per sink.emit call: bounds memory and the size of one spool transaction.
EMIT_CHUNK = 500
PERMISSION_HINT = "run the agent as a user that can read Zeek's logs (group zeek)"


class ZeekSource(Source):
    """Follows `<directory>/<log>.log` for each configured log, one LogRecord event per entry.

    Contract:
    * The directory is the first of `config.directories` that exists. While none does, the
      source is "unavailable" (naming the paths it looked at) and looks again every
      `directory_interval` seconds: on a host without Zeek it costs a stat now and then.
    * Each log file is followed on its own with the rotation-safe tailer: Zeek's rotation
      renames the file away and starts a new one, which the tailer reads from its start after
      draining the old one. Events go out with `Checkpoint(key="zeek:<path>")`, holding the
      tail position and the TSV header in force there, in chunks of at most 500: after a
      restart nothing handed to the sink is read again, and a TSV file resumed mid-way is still
      read with its header.
    * Lines that yield no event are counted by reason in `health.unparsed` (see
      `Skipped`), as are cut lines ("line_truncated", still parsed), partial lines lost
      to a rotation ("partial_line_dropped") and unreadable checkpoints ("bad_checkpoint").
    * A log not written yet (no RDP seen, so no rdp.log) is not a problem: it is opened when
      it appears. The state is "unavailable" only when no log can be read for another reason.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: ZeekConfig | None = None,
        *,
        opener: Opener = open_readonly,
        retry_interval: float = 10.0,
        directory_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.config = config or ZeekConfig()
        self._opener = opener
        self._retry_interval = retry_interval
        self._directory_interval = directory_interval
        self._tailers: list[FileTailer] = []
        self.directory: str | None = None
        self.health.mode = "tail"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        directory = await self._find_directory(stop)
        if directory is None:
            return
        self.directory = directory
        follows = []
        for log in self.config.logs:
            path = os.path.join(directory, f"{log}.log")
            position, header = self._resume(ctx, path)
            tailer = FileTailer(
                path,
                position=position,
                max_line_bytes=self.config.max_line_bytes,
                poll_interval=self.config.poll_interval_ms / 1000,
                retry_interval=self._retry_interval,
                start_at_end=self.config.read_from == "end",
                opener=self._opener,
            )
            parser = ZeekLogParser(
                log, agent_id=ctx.agent_id, host=ctx.host, clock_ns=ctx.clock_ns, header=header
            )
            self._tailers.append(tailer)
            follows.append((tailer, parser))
        try:
            async with asyncio.TaskGroup() as group:
                for tailer, parser in follows:
                    group.create_task(self._follow(tailer, parser, sink, stop))
        finally:
            for tailer in self._tailers:
                tailer.close()

    async def _find_directory(self, stop: asyncio.Event) -> str | None:
        looked = ", ".join(self.config.directories)
        while not stop.is_set():
            for directory in self.config.directories:
                if await asyncio.to_thread(os.path.isdir, directory):
                    self.health.state = "running"
                    self.health.detail = ""
                    return directory
            self.health.state = "unavailable"
            self.health.detail = f"no Zeek log directory (looked in {looked})"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._directory_interval)
        return None

    def _resume(
        self, ctx: SourceContext, path: str
    ) -> tuple[TailPosition | None, TsvHeader | None]:
        saved = ctx.checkpoints.get(_checkpoint_key(path))
        if not saved:
            return None, None
        try:
            data = json.loads(saved)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown checkpoint version")
            position = TailPosition.from_json(str(data["tail"]))
            header = None if data.get("header") is None else TsvHeader.from_dict(data["header"])
        except (ValueError, KeyError, TypeError):
            # Reading the file again from its start duplicates events; skipping it could lose
            # some. At-least-once wins.
            self.health.count_unparsed("bad_checkpoint")
            return None, None
        return position, header

    async def _follow(
        self, tailer: FileTailer, parser: ZeekLogParser, sink: EventSink, stop: asyncio.Event
    ) -> None:
        key = _checkpoint_key(tailer.path)
        chunks = new_lines(tailer, stop, self.health, self._update_health, max_lines=EMIT_CHUNK)
        async for lines, position in chunks:
            events = parse_lines(lines, parser.parse, self.health, tailer.path)
            value = json.dumps(
                {
                    "v": 1,
                    "tail": position.to_json(),
                    "header": None if parser.header is None else parser.header.to_dict(),
                },
                separators=(",", ":"),
            )
            # Emitted even without events, so the checkpoint moves past skipped lines.
            await sink.emit(events, Checkpoint(key=key, value=value))
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
        waiting = [os.path.basename(t.path) for t in self._tailers if t.status.state == "missing"]
        detail = "; ".join(
            problems + ([f"not written yet: {', '.join(waiting)}"] if waiting else [])
        )
        self.health.state = "unavailable" if problems and not reading else "running"
        self.health.detail = detail


def _checkpoint_key(path: str) -> str:
    return f"{SOURCE_ID}:{path}"


def _explain(detail: str) -> str:
    return f"{detail} ({PERMISSION_HINT})" if detail == "permission denied" else detail
