"""A bounded flow table keyed by the bidirectional 5-tuple.

The first packet's sender is the client, except that a TCP SYN+ACK seen first (the SYN was
missed) makes its sender the server, and a first packet that is not a SYN, sent from a port
below 1024 to one at or above it, is taken as the server's (a flow picked up mid-stream).
Flows end with one of `END_REASONS`; ended flows queue in `ended` until the sensor drains them.

Policy for floods and scans (bounded memory and bounded output):

* The table never holds more than `max_flows`; a new flow beyond it evicts the least recently
  seen one (`evicted`, counted).
* An *attempt flow* is a flow that never got past its opening: a TCP flow whose handshake never
  completed, or a flow with no packet from the server, in both cases of at most
  `ATTEMPT_MAX_PACKETS` packets (a probe, its retransmissions and the reply). Such flows are
  what scans and spoofed floods are made of, and attempts.py already counts every one of them
  per source and destination. So an attempt flow produces a FlowEvent only while the budget of
  `attempt_events_per_window` per window allows, and never when evicted (eviction means the
  table is under pressure); the others are only counted (`summarised`). Ordinary connections
  always produce their FlowEvent.
* Packets of a flow that ended on FIN or RST within `CLOSED_LINGER_NS` (a late ACK, a
  retransmitted FIN) are absorbed and counted (`late_packets`) instead of opening a new flow,
  unless they are a new SYN.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from agent.netsensor.packet import ACK, FIN, IPPROTO_TCP, RST, SYN, PacketInfo

END_REASONS: Final = ("fin", "rst", "idle", "active_timeout", "evicted", "shutdown")
ATTEMPT_MAX_PACKETS: Final = 8
# After both FINs, the final ACK normally follows within a round trip; without it the flow
# still ends as "fin" once this much frame time has passed.
FIN_LINGER_NS: Final = 2_000_000_000
CLOSED_LINGER_NS: Final = 10_000_000_000
MAX_CLOSED: Final = 8192

FlowKey = tuple[int, str, int, str, int]  # proto, client ip, client port, server ip, port

# Bits returned by FlowTable.update().
NEW: Final = 1  # this packet opened the flow
FROM_SERVER: Final = 2
HANDSHAKE: Final = 4  # this packet completed the TCP handshake
LATE: Final = 8  # absorbed as a late packet of a flow that ended: no flow

# TCP handshake progress.
_NONE, _SYN, _SYNACK, _DONE = 0, 1, 2, 3


class Flow:
    """One flow's counters; `client`/`server` sides as decided by the first packet."""

    __slots__ = (
        "bytes_to_client",
        "bytes_to_server",
        "client",
        "client_port",
        "closing_since",
        "fin_client",
        "fin_server",
        "first_ns",
        "handshake",
        "key",
        "last_ns",
        "packets_to_client",
        "packets_to_server",
        "proto",
        "server",
        "server_port",
        "tcp_flags",
    )

    def __init__(self, key: FlowKey, time_ns: int) -> None:
        self.key = key
        self.proto, self.client, self.client_port, self.server, self.server_port = key
        self.first_ns = self.last_ns = time_ns
        self.packets_to_server = self.packets_to_client = 0
        self.bytes_to_server = self.bytes_to_client = 0
        self.tcp_flags = 0
        self.handshake = _NONE
        self.fin_client = self.fin_server = False
        self.closing_since = 0

    @property
    def is_attempt(self) -> bool:
        """Never got past its opening (see the module's policy)."""
        if self.packets_to_server + self.packets_to_client > ATTEMPT_MAX_PACKETS:
            return False
        if self.proto == IPPROTO_TCP:
            return self.handshake != _DONE
        return self.packets_to_client == 0

    def restart(self, time_ns: int) -> Flow:
        """A copy of this record as it stands, and this one reset to count from `time_ns`."""
        copy = Flow(self.key, self.first_ns)
        for name in Flow.__slots__:
            setattr(copy, name, getattr(self, name))
        self.first_ns = self.last_ns = time_ns
        self.packets_to_server = self.packets_to_client = 0
        self.bytes_to_server = self.bytes_to_client = 0
        self.tcp_flags = 0
        return copy


@dataclass(frozen=True, slots=True)
class EndedFlow:
    flow: Flow
    reason: str


class FlowTable:
    """Flows in least-recently-seen order; `update()` per packet, `expire()` on a clock tick.

    Not thread-safe. Counters: `evicted`, `summarised`, `late_packets`, `orphan_rst`.
    """

    def __init__(
        self,
        *,
        max_flows: int,
        idle_timeout_ns: int,
        active_timeout_ns: int,
        budget_window_ns: int,
        attempt_events_per_window: int = 500,
    ) -> None:
        self.max_flows = max_flows
        self.idle_timeout_ns = idle_timeout_ns
        self.active_timeout_ns = active_timeout_ns
        self.budget_window_ns = budget_window_ns
        self.attempt_events_per_window = attempt_events_per_window
        self._flows: OrderedDict[FlowKey, Flow] = OrderedDict()
        self._closing: dict[FlowKey, Flow] = {}
        self._closed: OrderedDict[FlowKey, int] = OrderedDict()
        self.ended: list[EndedFlow] = []
        self.evicted = 0
        self.summarised = 0
        self.late_packets = 0
        self.orphan_rst = 0
        self._budget = attempt_events_per_window
        self._budget_window = 0

    def __len__(self) -> int:
        return len(self._flows)

    def update(self, p: PacketInfo) -> tuple[Flow | None, int]:
        """Account one packet; returns its flow and NEW / FROM_SERVER / HANDSHAKE / LATE bits."""
        flows = self._flows
        fwd: FlowKey = (p.proto, p.src, p.sport, p.dst, p.dport)
        flow = flows.get(fwd)
        status = 0
        if flow is None:
            rev: FlowKey = (p.proto, p.dst, p.dport, p.src, p.sport)
            flow = flows.get(rev)
            if flow is None:
                flow, status = self._open(p, fwd, rev)
                if flow is None:
                    return None, status
            else:
                status = FROM_SERVER
        t = p.time_ns
        if t - flow.first_ns >= self.active_timeout_ns and not status & NEW:
            self._end(flow.restart(t), "active_timeout")
        flows.move_to_end(flow.key)
        if t > flow.last_ns:
            flow.last_ns = t
        if status & FROM_SERVER:
            flow.packets_to_client += 1
            flow.bytes_to_client += p.length
        else:
            flow.packets_to_server += 1
            flow.bytes_to_server += p.length
        if p.proto == IPPROTO_TCP:
            status |= self._tcp(flow, p.tcp_flags, status, t)
        return flow, status

    def _open(self, p: PacketInfo, fwd: FlowKey, rev: FlowKey) -> tuple[Flow | None, int]:
        flags = p.tcp_flags
        tcp = p.proto == IPPROTO_TCP
        if tcp and not flags & SYN:
            closed = self._closed
            if fwd in closed or rev in closed:
                self.late_packets += 1
                return None, LATE
            if flags & RST:
                self.orphan_rst += 1  # a reset of nothing we track: no flow to open
                return None, LATE
        server_first = bool(flags & ACK) if tcp and flags & SYN else p.sport < 1024 <= p.dport
        key = rev if server_first else fwd
        if len(self._flows) >= self.max_flows:
            _, oldest = self._flows.popitem(last=False)
            self._closing.pop(oldest.key, None)
            self.evicted += 1
            self._end(oldest, "evicted")
        flow = Flow(key, p.time_ns)
        self._flows[key] = flow
        return flow, NEW | FROM_SERVER if server_first else NEW

    def _tcp(self, flow: Flow, flags: int, status: int, t: int) -> int:
        flow.tcp_flags |= flags
        from_server = status & FROM_SERVER
        result = 0
        if flags & SYN:
            if from_server:
                if flags & ACK:
                    if flow.handshake == _SYN:
                        flow.handshake = _SYNACK
                    elif flow.handshake == _NONE:
                        # Only the server's side is visible: its SYN-ACK stands for the
                        # completed handshake.
                        flow.handshake = _DONE
                        result = HANDSHAKE
            elif flow.handshake == _NONE:
                flow.handshake = _SYN
        elif flow.handshake == _SYNACK and not from_server and flags & ACK:
            flow.handshake = _DONE
            result = HANDSHAKE
        if flags & RST:
            self._remove(flow, "rst")
            return result
        if flags & FIN:
            if from_server:
                flow.fin_server = True
            else:
                flow.fin_client = True
            if flow.fin_client and flow.fin_server and not flow.closing_since:
                flow.closing_since = t
                self._closing[flow.key] = flow
        elif flow.closing_since and flags & ACK:
            self._remove(flow, "fin")  # the final ACK
        return result

    def _remove(self, flow: Flow, reason: str) -> None:
        self._flows.pop(flow.key, None)
        self._closing.pop(flow.key, None)
        closed = self._closed
        closed[flow.key] = flow.last_ns
        closed.move_to_end(flow.key)
        if len(closed) > MAX_CLOSED:
            closed.popitem(last=False)
        self._end(flow, reason)

    def _end(self, flow: Flow, reason: str) -> None:
        if flow.is_attempt:
            window = flow.last_ns // self.budget_window_ns
            if window != self._budget_window:
                self._budget_window = window
                self._budget = self.attempt_events_per_window
            if reason == "evicted" or self._budget <= 0:
                self.summarised += 1
                return
            self._budget -= 1
        self.ended.append(EndedFlow(flow, reason))

    def expire(self, now_ns: int) -> None:
        """End the flows idle since before `now_ns - idle timeout`, and closing flows whose
        final ACK did not come."""
        for flow in [
            f for f in self._closing.values() if now_ns - f.closing_since >= FIN_LINGER_NS
        ]:
            self._remove(flow, "fin")
        flows = self._flows
        limit = now_ns - self.idle_timeout_ns
        while flows:
            flow = next(iter(flows.values()))
            if flow.last_ns > limit:
                break
            flows.popitem(last=False)
            self._closing.pop(flow.key, None)
            self._end(flow, "idle")
        closed = self._closed
        limit = now_ns - CLOSED_LINGER_NS
        while closed and next(iter(closed.values())) <= limit:
            closed.popitem(last=False)

    def flush(self) -> None:
        """End every flow ("shutdown")."""
        flows = list(self._flows.values())
        self._flows.clear()
        self._closing.clear()
        for flow in flows:
            self._end(flow, "shutdown")

    def drain(self) -> list[EndedFlow]:
        ended, self.ended = self.ended, []
        return ended
