"""Live capture under a burst: are the sensor's packet counts complete or its drops exact?

Makes two network namespaces joined by a veth pair (10.213.x.1 -> 10.213.x.2; nothing leaves
them), runs the NetSensorSource (AF_PACKET socket made in the receiving namespace, filter
"udp port 9999") and, from the other namespace, a sender process that writes pre-built
Ethernet frames to an AF_PACKET socket in a paced tight loop (`--rate` packets/s for
`--seconds`, to `--flows` distinct source ports). Prints packets sent (and the rate achieved),
seen by the sensor, dropped as reported by the kernel (PACKET_STATISTICS), dropped by the veth
before any capture could see them (the receiving interface's rx_dropped), and whether
sent = seen + kernel drops + veth drops, i.e. "zero drops or drops reported exactly".

    .venv/bin/python bench/netsensor_live.py                   # 50,000 packets/s for 10 s
    .venv/bin/python bench/netsensor_live.py --rate 20000 --seconds 5

Root only (namespaces, raw sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The test harness (tests/) is not an installed package: reach it from the checkout, which is
# why the imports below come after this line.
sys.path.insert(0, str(ROOT))

from agent.netsensor.capture import AfPacketCapture, FrameCapture  # noqa: E402
from agent.netsensor.config import NetSensorConfig  # noqa: E402
from agent.netsensor.source import NetSensorSource  # noqa: E402
from agent.sources.base import Checkpoint, SourceContext  # noqa: E402
from canhgac.v1 import events_pb2  # noqa: E402
from tests.agent.netsensor.netns import NetnsPair, netns_capture, netns_pair  # noqa: E402

# Runs in the sending namespace: argv = iface src_mac dst_mac src_ip dst_ip rate seconds flows.
SENDER = r"""
import json, socket, struct, sys, time
iface, smac, dmac, sip, dip = sys.argv[1:6]
rate, seconds, flows = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
mac = lambda m: bytes.fromhex(m.replace(":", ""))
def csum(b):
    s = sum(struct.unpack("!10H", b))
    s = (s & 0xFFFF) + (s >> 16)
    return ~(s + (s >> 16)) & 0xFFFF
payload = b"x" * 18
frames = []
for i in range(flows):
    udp = struct.pack("!HHHH", 20000 + i, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(sip), socket.inet_aton(dip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frames.append(mac(dmac) + mac(smac) + b"\x08\x00" + ip + udp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
send, total, sent, batch = s.send, int(rate * seconds), 0, 50
t0 = time.monotonic()
while sent < total:
    for f in frames[sent % flows : sent % flows + batch] or frames[:batch]:
        send(f)
        sent += 1
    ahead = t0 + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)  # pacing to the offered rate: what this benchmark measures
elapsed = time.monotonic() - t0
print(json.dumps({"sent": sent, "elapsed": elapsed}))
"""


class CountingSink:
    def __init__(self) -> None:
        self.events = 0

    async def emit(
        self, events: Sequence[events_pb2.Event], checkpoint: Checkpoint | None = None
    ) -> None:
        self.events += len(events)


def link(pair: NetnsPair, ns: str, dev: str) -> dict[str, object]:
    out = subprocess.run(
        ["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True, text=True
    )
    found: dict[str, object] = json.loads(out.stdout)[0]
    return found


def rx_dropped(pair: NetnsPair) -> int:
    stats = link(pair, pair.b, pair.b_if)["stats64"]
    assert isinstance(stats, dict)
    return int(stats["rx"]["dropped"])


async def run(pair: NetnsPair, args: argparse.Namespace) -> None:
    config = NetSensorConfig(
        interface=pair.b_if,
        bpf_filter="udp port 9999",
        receive_buffer_bytes=args.rcvbuf_mib * 1024 * 1024,
    )
    captures: list[AfPacketCapture] = []

    def make(c: NetSensorConfig) -> FrameCapture:
        cap = netns_capture(pair.b)(c)
        captures.append(cap)
        return cap

    source = NetSensorSource(config, capture_factory=make, host_addresses=frozenset({pair.b_ip}))
    sink = CountingSink()
    stop = asyncio.Event()
    ctx = SourceContext(agent_id="bench", host="bench", clock_ns=time.time_ns)
    task = asyncio.create_task(source.run(ctx, sink, stop))
    while source.health.state != "running":
        if task.done():
            await task
        await asyncio.sleep(0.05)
    veth_before = rx_dropped(pair)
    smac = str(link(pair, pair.a, pair.a_if)["address"])
    dmac = str(link(pair, pair.b, pair.b_if)["address"])
    argv = [pair.a_if, smac, dmac, pair.a_ip, pair.b_ip]
    argv += [str(args.rate), str(args.seconds), str(args.flows)]
    sender = await asyncio.to_thread(
        pair.exec, pair.a, sys.executable, "-c", SENDER, *argv, timeout=args.seconds * 3 + 60
    )
    if sender.returncode != 0:
        raise SystemExit(f"sender failed: {sender.stderr}")
    result = json.loads(sender.stdout)
    await asyncio.sleep(2)  # let the sensor read what the kernel still holds
    stop.set()
    await task
    stats = captures[0].stats()
    veth = rx_dropped(pair) - veth_before
    sent, elapsed = int(result["sent"]), float(result["elapsed"])
    seen, drops = stats.received, stats.kernel_drops
    print(f"sent              {sent:>10,} in {elapsed:.2f} s = {sent / elapsed:,.0f} packets/s")
    print(f"seen by sensor    {seen:>10,}")
    print(f"kernel drops      {drops:>10,} (PACKET_STATISTICS)")
    print(f"veth rx_dropped   {veth:>10,} (before any capture)")
    print(f"events emitted    {sink.events:>10,}")
    print(f"health.unparsed   {source.health.unparsed}")
    accounted = seen + drops + veth
    verdict = "zero drops" if seen == sent else "drops reported exactly"
    if accounted != sent:
        verdict = f"MISMATCH: sent - (seen + dropped) = {sent - accounted:,}"
    print(f"sent = seen + dropped? {accounted == sent} ({verdict})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=50_000, help="packets per second to offer")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--flows", type=int, default=1000, help="distinct UDP source ports")
    p.add_argument("--rcvbuf-mib", type=int, default=16, help="the sensor's receive buffer")
    args = p.parse_args()
    with netns_pair("cgb") as pair:
        asyncio.run(run(pair, args))


if __name__ == "__main__":
    main()
