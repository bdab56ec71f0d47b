"""Connection attempts summed per source and per destination address over fixed windows.

Windows are aligned on multiples of `window_ns` of frame time (so a replay gives the windows a
live capture gave). Within a window each scope (source: the probing address; destination: the
probed one) holds at most `max_keys` addresses; attempts for further addresses are dropped and
counted (`keys_dropped`). Only probes create keys; replies (handshakes, RSTs, ICMP unreachable)
are added to keys that exist, so backscatter cannot fill the table.

Distinct ports and hosts are exact up to `MAX_DISTINCT` per key; beyond that each value not
among the kept ones is counted, which can over-count repeats (every rule threshold is far
below the cap, so only the magnitude matters there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

MAX_DISTINCT: Final = 1024
SAMPLE_PORTS: Final = 20
PROBE_KINDS: Final = ("syn", "fin", "null", "xmas", "ack")

# When a window's summary for one address is worth an event. Normal traffic completes its
# handshakes, so a summary is only emitted for unanswered probing:
# * any FIN-only, NULL or XMAS probe: no real TCP stack sends these outside a connection;
# * 3 or more unanswered probes spread over 2 or more ports or hosts: one connection to a
#   filtered port retransmits its SYN up to 3 times in a 10 s window but to a single port, and
#   lost SYNs of real clients are rare and spread out;
# * 20 or more unanswered probes whatever their spread (a client hammering a closed port, or
#   the destination side of a flood).
# The lowest rule thresholds (10 stealth probes, 20 unanswered SYNs of a sweep) are well above,
# so every summary a rule can match is emitted, while a busy server emits at most one summary
# per window for itself when a few of its clients' SYNs go unanswered.
MIN_UNANSWERED_SPREAD: Final = 3
MIN_UNANSWERED: Final = 20


class _Distinct:
    """A set of values kept up to MAX_DISTINCT, then counted."""

    __slots__ = ("extra", "values")

    def __init__(self) -> None:
        self.values: set[str | int] = set()
        self.extra = 0

    def add(self, value: str | int) -> None:
        values = self.values
        if value in values:
            return
        if len(values) < MAX_DISTINCT:
            values.add(value)
        else:
            self.extra += 1

    def __len__(self) -> int:
        return len(self.values) + self.extra


class AttemptStats:
    """One address's attempts in one window."""

    __slots__ = (
        "handshakes",
        "hosts",
        "icmp_unreachable",
        "ports",
        "probes",
        "rst_replies",
        "sample",
        "syns",
    )

    def __init__(self) -> None:
        self.syns = 0
        self.handshakes = 0
        self.rst_replies = 0
        self.icmp_unreachable = 0
        self.probes: dict[str, int] = {}
        self.ports = _Distinct()
        self.hosts = _Distinct()  # destination hosts (source scope) or sources (destination)
        self.sample: list[int] = []

    def probe(self, kind: str, port: int, host: str) -> None:
        self.probes[kind] = self.probes.get(kind, 0) + 1
        if kind == "syn":
            self.syns += 1
        before = len(self.ports.values)
        self.ports.add(port)
        if len(self.ports.values) != before and len(self.sample) < SAMPLE_PORTS:
            self.sample.append(port)
        self.hosts.add(host)

    @property
    def syn_without_handshake(self) -> int:
        return max(0, self.syns - self.handshakes)

    @property
    def noteworthy(self) -> bool:
        probes = self.probes
        stealth = probes.get("fin", 0) + probes.get("null", 0) + probes.get("xmas", 0)
        if stealth:
            return True
        unanswered = self.syn_without_handshake + probes.get("ack", 0)
        if unanswered >= MIN_UNANSWERED:
            return True
        spread = len(self.ports) >= 2 or len(self.hosts) >= 2
        return unanswered >= MIN_UNANSWERED_SPREAD and spread


@dataclass(frozen=True, slots=True)
class AttemptSummary:
    """A closed window's noteworthy summary for one address."""

    scope: str  # "source" or "destination"
    ip: str
    window_start_ns: int
    window_end_ns: int
    stats: AttemptStats = field(compare=False)


class AttemptTracker:
    """Per-window attempt statistics; `closed` holds summaries of windows that ended."""

    def __init__(self, *, window_ns: int, max_keys: int) -> None:
        self.window_ns = window_ns
        self.max_keys = max_keys
        self.sources: dict[str, AttemptStats] = {}
        self.destinations: dict[str, AttemptStats] = {}
        self.window_start = -1
        self.keys_dropped = 0
        self.closed: list[AttemptSummary] = []

    def __len__(self) -> int:
        return len(self.sources) + len(self.destinations)

    def advance(self, now_ns: int) -> None:
        """Close the current window if `now_ns` is past its end; start the one `now_ns` is in."""
        start = now_ns - now_ns % self.window_ns
        if start > self.window_start:
            if self.window_start >= 0:
                self.close(self.window_start + self.window_ns)
            self.window_start = start

    def close(self, end_ns: int) -> None:
        """Summarise the current window as ending at `end_ns` and empty it."""
        for scope, keys in (("source", self.sources), ("destination", self.destinations)):
            for ip, stats in keys.items():
                if stats.noteworthy:
                    self.closed.append(AttemptSummary(scope, ip, self.window_start, end_ns, stats))
        self.sources = {}
        self.destinations = {}

    def _key(self, keys: dict[str, AttemptStats], ip: str) -> AttemptStats | None:
        stats = keys.get(ip)
        if stats is None:
            if len(keys) >= self.max_keys:
                self.keys_dropped += 1
                return None
            stats = keys[ip] = AttemptStats()
        return stats

    def probe(self, kind: str, src: str, dst: str, dport: int) -> None:
        """A probe packet (`kind` in PROBE_KINDS) from `src` to `dst`:`dport`."""
        # The destination first: under a spoofed-source flood the source scope fills up, the
        # destination it targets must still be counted.
        stats = self._key(self.destinations, dst)
        if stats is not None:
            stats.probe(kind, dport, src)
        stats = self._key(self.sources, src)
        if stats is not None:
            stats.probe(kind, dport, dst)

    def handshake(self, client: str, server: str) -> None:
        stats = self.sources.get(client)
        if stats is not None:
            stats.handshakes += 1
        stats = self.destinations.get(server)
        if stats is not None:
            stats.handshakes += 1

    def rst_reply(self, sender: str, prober: str) -> None:
        stats = self.sources.get(prober)
        if stats is not None:
            stats.rst_replies += 1
        stats = self.destinations.get(sender)
        if stats is not None:
            stats.rst_replies += 1

    def unreachable(self, prober: str, target: str) -> None:
        stats = self.sources.get(prober)
        if stats is not None:
            stats.icmp_unreachable += 1
        stats = self.destinations.get(target)
        if stats is not None:
            stats.icmp_unreachable += 1

    def drain(self) -> list[AttemptSummary]:
        closed, self.closed = self.closed, []
        return closed
