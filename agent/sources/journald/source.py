"""The journald auth source: follow the systemd journal with journalctl, emit AuthEvents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from agent.sources.authlog.parser import AuthLogParser
from agent.sources.base import Checkpoint, EventSink, Skipped, Source, SourceContext
from canhgac.errors import SourceUnavailableError
from canhgac.v1 import events_pb2

from .command import (
    NOT_FOUND,
    SYSTEM_JOURNAL_ROOTS,
    check_journal,
    find_journalctl,
    journalctl_argv,
    read_machine_id,
    valid_cursor,
)
from .config import JournaldConfig
from .entry import EntryError, JournalEntry, decode_entry
from .process import JournalctlProcess

SOURCE_ID = "journald"
CHECKPOINT_KEY = "journald:cursor"
# Events per sink.emit call: bounds memory and the size of one spool transaction.
EMIT_CHUNK = 500
# A first journalctl that fails this soon, having printed nothing, cannot run here at all.
EARLY_EXIT_S = 5.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger("canhgac.agent.journald")


class JournaldAuthSource(Source):
    """Follows the journal through `journalctl --follow --output=json` and emits one AuthEvent
    per recognised sshd / sudo / su / account-management message.

    Contract:
    * Events are handed to the sink in chunks of at most 500, at the latest ~`batch_delay_ms`
      after the first entry of a chunk was read, each with `Checkpoint("journald:cursor")`
      holding the cursor of the last entry the chunk covers. On start the source resumes
      just after the saved cursor: nothing handed to the sink is read again, nothing skipped.
    * Raises SourceUnavailableError when journalctl is missing, there is no readable journal,
      or journalctl fails before printing anything on its first start.
    * When journalctl exits later it is restarted from the last cursor after a backoff
      (doubling up to `restart_backoff_max_ms`), counted as "journalctl_restart".
    * Entries that yield no event are counted by reason in `health.unparsed`: the auth-log
      reasons (`not_auth`, `unrecognised_<program>`, `ignored_<program>`) and the journal ones
      (`bad_json`, `no_cursor`, `bad_timestamp`, `no_message`, `no_program`, `entry_too_long`,
      `partial_entry`, `bad_checkpoint`).
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: JournaldConfig | None = None,
        *,
        system_roots: Sequence[Path] = SYSTEM_JOURNAL_ROOTS,
        etc_root: Path = Path("/etc"),
    ) -> None:
        super().__init__()
        self.config = config or JournaldConfig()
        self._system_roots = tuple(system_roots)
        self._etc_root = etc_root
        self._machine_id: str | None = None
        self.health.mode = "journalctl"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        executable, what = await asyncio.to_thread(self._preflight)
        parser = AuthLogParser(
            agent_id=ctx.agent_id, default_host=ctx.host, clock_ns=ctx.clock_ns, source_id=SOURCE_ID
        )
        follower = _Follower(self, parser, sink, stop, self._saved_cursor(ctx))
        loop = asyncio.get_running_loop()
        backoff = self.config.restart_backoff_ms / 1000
        first = True
        while not stop.is_set():
            argv = journalctl_argv(
                self.config, executable, cursor=follower.cursor, machine_id=self._machine_id
            )
            try:
                proc = await JournalctlProcess.start(
                    argv, self.config.max_line_bytes, self.health.count_unparsed
                )
            except FileNotFoundError:
                raise SourceUnavailableError(NOT_FOUND, location=executable) from None
            except OSError as exc:
                raise SourceUnavailableError(f"cannot run {executable}: {exc}") from None
            self.health.state, self.health.detail = "running", f"following {what}"
            started = loop.time()
            try:
                read_any = await follower.follow(proc)
            finally:
                status = await proc.close()
            if stop.is_set():
                return
            reason = f"journalctl exited with status {status}" + (
                f": {proc.last_stderr}" if proc.last_stderr else ""
            )
            if first and not read_any and status != 0 and loop.time() - started < EARLY_EXIT_S:
                raise SourceUnavailableError(reason)
            first = False
            if loop.time() - started > self.config.restart_backoff_max_ms / 1000:
                backoff = self.config.restart_backoff_ms / 1000  # it ran fine for a while
            self.health.count_unparsed("journalctl_restart")
            self.health.detail = f"{reason}; restarting in {backoff:g}s"
            log.warning("%s; restarting in %gs", reason, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, self.config.restart_backoff_max_ms / 1000)

    def _preflight(self) -> tuple[str, str]:
        """Blocking checks (run in a thread): the executable, the journal, the machine id."""
        try:
            executable = find_journalctl(self.config.journalctl)
            what = check_journal(self.config, self._system_roots)
        except SourceUnavailableError as exc:
            self.health.state, self.health.detail = "unavailable", str(exc)
            raise
        system = self.config.directory is None and self.config.files is None
        self._machine_id = read_machine_id(self._etc_root) if system else None
        return executable, what

    def _saved_cursor(self, ctx: SourceContext) -> str | None:
        saved = ctx.checkpoints.get(CHECKPOINT_KEY)
        if saved is None:
            return None
        if not valid_cursor(saved):
            # journalctl refuses a malformed cursor; starting per read_from beats not running.
            self.health.count_unparsed("bad_checkpoint")
            return None
        return saved


class _Follower:
    """Reads one journalctl process after another, batching events and the cursor they reach."""

    def __init__(
        self,
        source: JournaldAuthSource,
        parser: AuthLogParser,
        sink: EventSink,
        stop: asyncio.Event,
        cursor: str | None,
    ) -> None:
        self._health = source.health
        self._delay = source.config.batch_delay_ms / 1000
        self._parser = parser
        self._sink = sink
        self._stop = stop
        self.cursor = cursor  # of the last entry handed to the sink
        self._events: list[events_pb2.Event] = []
        self._pending: str | None = None  # cursor of the last entry read, not yet emitted

    async def follow(self, proc: JournalctlProcess) -> bool:
        """Read until journalctl's stdout closes or stop is set; True if it printed anything."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.create_task(self._stop.wait())
        reading: asyncio.Task[list[bytes] | None] | None = None
        deadline: float | None = None
        read_any = False
        try:
            while not self._stop.is_set():
                reading = reading or asyncio.create_task(proc.read_lines())
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    {reading, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if reading in done:
                    lines, reading = reading.result(), None
                    if lines is None:
                        break
                    read_any = True
                    for line in lines:
                        await self._take(line)
                    if self._pending is not None and deadline is None:
                        deadline = loop.time() + self._delay
                if deadline is not None and loop.time() >= deadline:
                    await self._flush()
                    deadline = None
        finally:
            stopping.cancel()
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
        await self._flush()
        return read_any

    async def _take(self, line: bytes) -> None:
        try:
            entry = decode_entry(line)
        except EntryError as exc:
            self._health.count_unparsed(exc.reason)
            if exc.cursor is not None:
                self._pending = exc.cursor
            return
        parsed = self._parser.parse_message(
            entry.time_ns,
            entry.host,
            entry.program,
            entry.pid,
            entry.message,
            original=_original(entry),
        )
        if isinstance(parsed, Skipped):
            self._health.count_unparsed(parsed.reason)
        else:
            self._events.append(parsed)
        self._pending = entry.cursor
        if len(self._events) >= EMIT_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending is None:
            return
        # Emitted even without events, so the checkpoint moves past skipped entries.
        events, self._events = self._events, []
        await self._sink.emit(events, Checkpoint(key=CHECKPOINT_KEY, value=self._pending))
        self._health.events += len(events)
        self.cursor, self._pending = self._pending, None


def _original(entry: JournalEntry) -> str:
    """The entry as the syslog line rsyslog would have written (RFC 3339 time, UTC)."""
    stamp = (_EPOCH + timedelta(microseconds=entry.time_ns // 1000)).isoformat()
    tag = f"{entry.program}[{entry.pid}]" if entry.pid else entry.program
    return f"{stamp} {entry.host} {tag}: {entry.message}"
