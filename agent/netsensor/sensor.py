"""The sensor core: frames in, FlowEvent / DnsEvent / ConnectionAttempts events out.

Pure computation, no sockets, driven by the frames' own timestamps: a pcap replay gives the
events a live capture of the same packets gave. `feed()` never raises on bad input (every
frame that cannot be used is counted in `health`); `poll(now_ns)` returns the events that are
due (the source calls it regularly, with the wall clock live or the latest frame time in a
replay); `flush(now_ns)` ends everything.

Events (category "network", source "netsensor"):

| payload             | type       | action                      |
|---------------------|------------|-----------------------------|
| flow                | connection | flow                        |
| dns                 | protocol   | dns_query / dns_answer      |
| connection_attempts | info       | connection_attempts         |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

from agent.netsensor.attempts import AttemptSummary, AttemptTracker
from agent.netsensor.config import NetSensorConfig
from agent.netsensor.decode import ICMP_UNREACHABLE, ICMPV6_UNREACHABLE, decode
from agent.netsensor.dns import DnsParseError, parse_dns
from agent.netsensor.flows import FROM_SERVER, HANDSHAKE, LATE, NEW, EndedFlow, FlowTable
from agent.netsensor.packet import (
    ACK,
    FIN,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    PSH,
    RST,
    SYN,
    URG,
    DecodeError,
    Frame,
    PacketInfo,
)
from agent.sources.base import SourceContext
from canhgac.v1 import events_pb2

log = logging.getLogger(__name__)

SOURCE_ID: Final = "netsensor"
S: Final = 1_000_000_000
# Housekeeping (idle flows, window ends) runs when frame time has moved on this much.
TICK_NS: Final = S
# DNS messages become events one for one; beyond this many per second of frame time (a DNS
# flood, a resolver under attack) they are only counted (`dns_events_dropped`), so a flood
# cannot turn into an event per packet.
MAX_DNS_EVENTS_PER_S: Final = 2000
TRANSPORTS: Final[dict[int, str]] = {
    IPPROTO_TCP: "tcp",
    IPPROTO_UDP: "udp",
    IPPROTO_ICMP: "icmp",
    IPPROTO_ICMPV6: "ipv6-icmp",
    47: "gre",
    50: "esp",
    51: "ah",
    132: "sctp",
}
_PROBE_MASK: Final = FIN | SYN | RST | PSH | ACK | URG  # ECE/CWR (ECN) do not change the kind
_PROBES: Final[dict[int, str]] = {
    SYN: "syn",
    FIN: "fin",
    0: "null",
    FIN | PSH | URG: "xmas",
}


@dataclass
class NetSensorHealth:
    """The sensor's counters (reported in the source's status)."""

    packets: int = 0
    bytes: int = 0
    decode_failures: dict[str, int] = field(default_factory=dict)
    non_first_fragments: int = 0
    flows_active: int = 0
    flows_evicted: int = 0
    # Attempt flows (see flows.py) ended without a FlowEvent: summarised by attempt windows.
    flows_summarised: int = 0
    late_packets: int = 0
    attempt_keys_dropped: int = 0
    dns_parse_failures: dict[str, int] = field(default_factory=dict)
    dns_events_dropped: int = 0
    events: dict[str, int] = field(default_factory=dict)


class Sensor:
    """Turns frames into network events; see the module docstring. Not thread-safe."""

    def __init__(
        self,
        config: NetSensorConfig,
        ctx: SourceContext,
        *,
        interface: str,
        host_addresses: frozenset[str] = frozenset(),
    ) -> None:
        self._config = config
        self._ctx = ctx
        self._interface = interface
        self._host = host_addresses
        self._flows = FlowTable(
            max_flows=config.max_flows,
            idle_timeout_ns=config.flow_idle_timeout_s * S,
            active_timeout_ns=config.flow_active_timeout_s * S,
            budget_window_ns=config.attempts_window_s * S,
        )
        self._attempts = AttemptTracker(
            window_ns=config.attempts_window_s * S, max_keys=config.max_attempt_keys
        )
        self._dns: list[events_pb2.Event] = []
        self._dns_budget = MAX_DNS_EVENTS_PER_S
        self._now = 0
        self._next_tick = 0
        self._health = NetSensorHealth()

    @property
    def health(self) -> NetSensorHealth:
        h = self._health
        h.flows_active = len(self._flows)
        h.flows_evicted = self._flows.evicted
        h.flows_summarised = self._flows.summarised
        h.late_packets = self._flows.late_packets
        h.attempt_keys_dropped = self._attempts.keys_dropped
        return h

    @property
    def attempt_keys(self) -> int:
        """Addresses tracked in the current attempts window (both scopes)."""
        return len(self._attempts)

    def feed(self, frame: Frame) -> None:
        """Account one frame. Never raises on bad input: failures are counted by reason."""
        h = self._health
        h.packets += 1
        h.bytes += frame.wire_length or len(frame.data)
        try:
            p = decode(frame)
        except DecodeError as exc:
            failures = h.decode_failures
            failures[exc.reason] = failures.get(exc.reason, 0) + 1
            return
        try:
            self._account(p)
        except Exception:  # one bad packet must not stop the sensor
            failures = h.decode_failures
            count = failures["internal_error"] = failures.get("internal_error", 0) + 1
            if count == 1:  # logged once: the counter carries the rest
                log.exception("netsensor: packet accounting failed")

    def _account(self, p: PacketInfo) -> None:
        t = p.time_ns
        if t > self._now:
            self._now = t
            if t >= self._next_tick:
                self._tick(t)
        if p.fragment:
            self._health.non_first_fragments += 1
            return
        flow, status = self._flows.update(p)
        proto = p.proto
        if proto == IPPROTO_TCP:
            flags = p.tcp_flags
            kind = _PROBES.get(flags & _PROBE_MASK)
            if kind is None and flags & _PROBE_MASK == ACK and status & NEW:
                kind = "ack"  # an ACK outside any connection we know
            attempts = self._attempts
            if kind is not None and not status & FROM_SERVER:
                attempts.probe(kind, p.src, p.dst, p.dport)
            if status & HANDSHAKE and flow is not None:
                attempts.handshake(flow.client, flow.server)
            if flags & RST:
                attempts.rst_reply(p.src, p.dst)
        elif p.icmp_type >= 0 and p.quoted_dst:
            unreachable = ICMP_UNREACHABLE if proto == IPPROTO_ICMP else ICMPV6_UNREACHABLE
            if p.icmp_type == unreachable:
                self._attempts.unreachable(p.dst, p.quoted_dst)
        if p.payload and self._config.dns and not status & LATE:
            self._dns_message(p)

    def _dns_message(self, p: PacketInfo) -> None:
        if self._dns_budget <= 0:
            self._health.dns_events_dropped += 1
            return
        self._dns_budget -= 1
        tcp = p.proto == IPPROTO_TCP
        try:
            msg = parse_dns(p.payload, tcp=tcp)
        except DnsParseError as exc:
            failures = self._health.dns_parse_failures
            failures[exc.reason] = failures.get(exc.reason, 0) + 1
            return
        if msg.is_response:
            client, client_port, server, server_port = p.dst, p.dport, p.src, p.sport
        else:
            client, client_port, server, server_port = p.src, p.sport, p.dst, p.dport
        payload = events_pb2.DnsEvent(
            query_name=msg.query_name,
            query_type=msg.query_type,
            rcode=msg.rcode,
            answers=[
                events_pb2.DnsAnswer(name=a.name, type=a.type, data=a.data, ttl=a.ttl)
                for a in msg.answers
            ],
            query_length=len(msg.query_name),
            is_response=msg.is_response,
            transaction_id=msg.transaction_id,
            client_ip=client,
            client_port=client_port,
            server_ip=server,
            server_port=server_port,
            transport="tcp" if tcp else "udp",
        )
        action = "dns_answer" if msg.is_response else "dns_query"
        self._dns.append(
            self._ctx.event(
                SOURCE_ID,
                category="network",
                type="protocol",
                action=action,
                time_ns=p.time_ns,
                dns=payload,
            )
        )

    def _tick(self, now_ns: int) -> None:
        self._next_tick = now_ns - now_ns % TICK_NS + TICK_NS
        self._dns_budget = MAX_DNS_EVENTS_PER_S
        self._flows.expire(now_ns)
        self._attempts.advance(now_ns)

    def poll(self, now_ns: int) -> list[events_pb2.Event]:
        """The events due by `now_ns`: ended flows, closed attempt windows, DNS messages."""
        if now_ns > self._now:
            self._now = now_ns
        self._tick(self._now)
        return self._collect()

    def flush(self, now_ns: int) -> list[events_pb2.Event]:
        """End every flow ("shutdown") and the current attempts window, and return all."""
        now = max(now_ns, self._now)
        self._flows.expire(now)
        self._flows.flush()
        if self._attempts.window_start >= 0:
            self._attempts.close(now)
            self._attempts.window_start = -1
        return self._collect()

    def _collect(self) -> list[events_pb2.Event]:
        events = self._dns
        self._dns = []
        events.extend(self._flow_event(ended) for ended in self._flows.drain())
        events.extend(self._attempts_event(summary) for summary in self._attempts.drain())
        counts = self._health.events
        for event in events:
            kind = event.action
            counts[kind] = counts.get(kind, 0) + 1
        return events

    def _direction(self, client: str, server: str) -> str:
        host = self._host
        if not host:
            return "unknown"
        from_host = client in host
        to_host = server in host
        if from_host:
            return "internal" if to_host else "outbound"
        return "inbound" if to_host else "external"

    def _flow_event(self, ended: EndedFlow) -> events_pb2.Event:
        f = ended.flow
        payload = events_pb2.FlowEvent(
            transport=TRANSPORTS.get(f.proto, str(f.proto)),
            src_ip=f.client,
            src_port=f.client_port,
            dst_ip=f.server,
            dst_port=f.server_port,
            direction=self._direction(f.client, f.server),
            packets_to_server=f.packets_to_server,
            packets_to_client=f.packets_to_client,
            bytes_to_server=f.bytes_to_server,
            bytes_to_client=f.bytes_to_client,
            tcp_flags=f.tcp_flags,
            first_seen_ns=f.first_ns,
            last_seen_ns=f.last_ns,
            end_reason=ended.reason,
            interface=self._interface,
            ip_protocol=f.proto,
        )
        return self._ctx.event(
            SOURCE_ID,
            category="network",
            type="connection",
            action="flow",
            time_ns=f.last_ns,
            flow=payload,
        )

    def _attempts_event(self, summary: AttemptSummary) -> events_pb2.Event:
        s = summary.stats
        distinct_hosts = len(s.hosts)
        source_scope = summary.scope == "source"
        payload = events_pb2.ConnectionAttempts(
            scope=summary.scope,
            ip=summary.ip,
            window_start_ns=summary.window_start_ns,
            window_end_ns=summary.window_end_ns,
            syn_without_handshake=s.syn_without_handshake,
            handshakes_completed=s.handshakes,
            distinct_dst_ports=len(s.ports),
            distinct_dst_hosts=distinct_hosts if source_scope else 0,
            distinct_src_hosts=0 if source_scope else distinct_hosts,
            rst_replies=s.rst_replies,
            icmp_unreachable=s.icmp_unreachable,
            probes_by_flags=s.probes,
            sample_ports=sorted(s.sample),
            interface=self._interface,
        )
        return self._ctx.event(
            SOURCE_ID,
            category="network",
            type="info",
            action="connection_attempts",
            time_ns=summary.window_end_ns,
            connection_attempts=payload,
        )
