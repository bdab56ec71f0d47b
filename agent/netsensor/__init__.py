"""The agent's network sensor: live capture or pcap replay -> flows, DNS, connection attempts.

Data path (one module each):

    capture.py (AF_PACKET + kernel BPF)  ─┐
                                          ├─▶ frames (bytes, time_ns, linktype)
    replay.py (pcap / pcapng files)      ─┘            │
                                                       ▼
    sensor.py  Sensor.feed(frame, time_ns, linktype)
                 decode.py   fast header decode (struct) -> PacketInfo, or a counted failure
                 flows.py    bounded flow table: FlowEvent on end (FIN/RST, idle, active
                             timeout, eviction), evictions counted
                 attempts.py per-source and per-destination connection-attempt windows
                             -> ConnectionAttempts events (scans, floods)
                 dns.py      DNS messages (UDP/TCP 53) dissected in depth -> DnsEvent
               Sensor.poll(now_ns) -> events due; Sensor.health -> counters
                                                       │
    source.py  NetSensorSource (registered as "netsensor") emits them through the sink

Only the packets that need it are dissected in depth (DNS); everything else is read with
`struct` from the headers, because full scapy dissection manages about 12k packets/s.
"""
