"""Renews the agent's certificate before it expires, without an operator.

Checked every `check_interval_s`; when less than a third of the validity is left (90-day
certificates: from day 60), the agent asks for a new one over mutual TLS. A failure is logged
and retried after `retry_s`, so a collector outage during the renewal window costs nothing;
the old certificate stays in use until the new one is on disk. After a renewal the shipper
reconnects, so the stream runs on the new certificate. The renewal itself runs in a child
process (renewal.py), which keeps `cryptography` out of the long-running agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from agent.config import CollectorConnection
from agent.enroll.identity import IdentityFiles, utcnow
from agent.enroll.renewal import renew_in_child
from canhgac.errors import CanhGacError
from canhgac.logs import LogFormat

log = logging.getLogger("canhgac.agent.enroll")


class CertificateRenewer:
    """Background task: `run(stop)` until stop is set."""

    def __init__(
        self,
        conn: CollectorConnection,
        files: IdentityFiles,
        on_renewed: Callable[[], None],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        check_interval_s: float = 3600.0,
        retry_s: float = 300.0,
        log_level: str = "info",
        log_format: LogFormat = "text",
    ) -> None:
        self._conn = conn
        self._files = files
        self._on_renewed = on_renewed
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._retry_s = retry_s
        self._log = (log_level, log_format)
        self.renewals = 0
        self.last_error = ""

    async def renew_if_due(self) -> bool:
        """One check; True when a new certificate was obtained and written. Nothing to do
        before enrollment (the shipper already says the agent must be enrolled)."""
        if not self._files.exists():
            return False
        current = self._files.load()
        if not current.renewal_due(self._clock()):
            return False
        level, fmt = self._log
        await renew_in_child(self._conn, self._files, log_level=level, log_format=fmt)
        self.renewals += 1
        self._on_renewed()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = self._check_interval_s
            try:
                await self.renew_if_due()
                self.last_error = ""
            except CanhGacError as exc:  # the child reports every call failure as one
                self.last_error = str(exc)
                delay = self._retry_s
                log.warning("certificate renewal failed (retry in %.0f s): %s", delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
