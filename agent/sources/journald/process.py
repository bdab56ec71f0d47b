"""One running journalctl: its stdout split into bounded lines, its stderr logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

log = logging.getLogger("canhgac.agent.journald")

_READ_SIZE = 64 * 1024
_STDERR_KEPT = 500  # characters of journalctl's last complaint kept for health.detail


class JournalctlProcess:
    """A journalctl child process read without blocking the event loop.

    Contract: `read_lines()` returns the next complete stdout lines (without the newline), at
    least one, or None once stdout is closed. A line longer than `max_line_bytes` is dropped
    whole and reported through `count("entry_too_long")`; an incomplete last line at EOF is
    reported as "partial_entry". Each stderr line is logged; the latest is in `last_stderr`.
    """

    def __init__(
        self, proc: asyncio.subprocess.Process, max_line_bytes: int, count: Callable[[str], None]
    ) -> None:
        self._proc = proc
        self._max = max_line_bytes
        self._count = count
        self._buf = bytearray()
        self._discarding = False  # inside a line already found too long
        self.last_stderr = ""
        self._stderr_task = asyncio.create_task(self._log_stderr())

    @classmethod
    async def start(
        cls, argv: Sequence[str], max_line_bytes: int, count: Callable[[str], None]
    ) -> JournalctlProcess:
        """Start journalctl; OSError (e.g. FileNotFoundError) when it cannot be executed."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"LC_ALL": "C.UTF-8", "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""},
        )
        return cls(proc, max_line_bytes, count)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def read_lines(self) -> list[bytes] | None:
        assert self._proc.stdout is not None
        while True:
            chunk = await self._proc.stdout.read(_READ_SIZE)
            if not chunk:
                if self._buf and not self._discarding:
                    self._count("partial_entry")
                self._buf.clear()
                return None
            lines = self._split(chunk)
            if lines:
                return lines

    def _split(self, chunk: bytes) -> list[bytes]:
        pieces = chunk.split(b"\n")
        lines: list[bytes] = []
        for piece in pieces[:-1]:  # each ends a line
            if self._discarding:
                self._discarding = False
            else:
                self._buf += piece
                if len(self._buf) > self._max:
                    self._count("entry_too_long")
                else:
                    lines.append(bytes(self._buf))
            self._buf.clear()
        if not self._discarding:
            self._buf += pieces[-1]
            if len(self._buf) > self._max:
                self._count("entry_too_long")
                self._buf.clear()
                self._discarding = True
        return lines

    async def close(self) -> int:
        """Stop the process (if still running) and return its exit status."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), timeout=5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
        status = await self._proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stderr_task, timeout=1)
        self._stderr_task.cancel()
        return status

    async def _log_stderr(self) -> None:
        assert self._proc.stderr is not None
        while True:
            try:
                raw = await self._proc.stderr.readline()
            except ValueError:  # a line over the stream limit: skip what was buffered
                continue
            if not raw:
                return
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                self.last_stderr = text[:_STDERR_KEPT]
                log.warning("journalctl[%d]: %s", self._proc.pid, self.last_stderr)
