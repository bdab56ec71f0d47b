"""Replay: pcap and pcapng files through the sensor, as if captured live.

Frames are read with scapy's RawPcapReader (which hands pcapng files to RawPcapNgReader): raw
bytes, timestamp and link type, no dissection. The sensor is polled on the capture's own clock
(every second of capture time, like the live source on the wall clock) and flushed at the end,
so a replay of a capture yields the events the live sensor gave for the same packets.

`canhgac-agent replay FILE` prints the events as JSON lines (`cmd_replay`; the command's
arguments are in agent/netsensor/command.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from agent.netsensor.command import add_replay_command
from agent.netsensor.config import NetSensorConfig
from agent.netsensor.packet import Frame
from agent.netsensor.sensor import Sensor
from agent.sources.base import SourceContext
from canhgac.errors import ConfigError
from canhgac.v1 import events_pb2

POLL_EVERY_NS = 1_000_000_000
_NS = 1_000_000_000


__all__ = [
    "add_replay_command",
    "cmd_replay",
    "event_json",
    "read_frames",
    "replay_events",
    "replay_file",
]


def read_frames(path: Path, snaplen: int = 65535) -> Iterator[Frame]:
    """The frames of a pcap or pcapng file (gzip-compressed too), cut to `snaplen` bytes.

    Raises ConfigError when the file cannot be opened or is not a capture file.
    """
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapNgReader, RawPcapReader

    reader: Any  # RawPcapReader, or RawPcapNgReader for a pcapng file
    try:
        reader = RawPcapReader(str(path))
    except (OSError, Scapy_Exception) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the capture: {reason}", location=str(path)) from None
    try:
        pcapng = isinstance(reader, RawPcapNgReader)
        if pcapng:
            for data, meta in reader:
                ticks = (meta.tshigh << 32) | meta.tslow
                when = ticks * _NS // meta.tsresol
                yield Frame(bytes(data[:snaplen]), when, meta.linktype, meta.wirelen)
        else:
            scale = 1 if reader.nano else 1000
            linktype = reader.linktype
            for data, meta in reader:
                when = meta.sec * _NS + meta.usec * scale
                yield Frame(bytes(data[:snaplen]), when, linktype, meta.wirelen)
    finally:
        reader.close()


def replay_events(
    path: Path,
    config: NetSensorConfig,
    ctx: SourceContext,
    *,
    interface: str | None = None,
    host_addresses: frozenset[str] = frozenset(),
) -> Iterator[events_pb2.Event]:
    """The events the sensor produces from the file's frames, in the order it produces them.

    `interface` names the capture interface in flow events (default: the config's).
    """
    sensor = Sensor(
        config, ctx, interface=interface or config.interface, host_addresses=host_addresses
    )
    next_poll = None
    last = 0
    for frame in read_frames(path, config.snaplen):
        sensor.feed(frame)
        last = max(last, frame.time_ns)
        if next_poll is None:
            next_poll = frame.time_ns + POLL_EVERY_NS
        elif frame.time_ns >= next_poll:
            yield from sensor.poll(frame.time_ns)
            next_poll = frame.time_ns + POLL_EVERY_NS
    yield from sensor.flush(last)


def replay_file(
    path: Path,
    config: NetSensorConfig,
    ctx: SourceContext,
    *,
    interface: str | None = None,
    host_addresses: frozenset[str] = frozenset(),
) -> list[events_pb2.Event]:
    return list(
        replay_events(path, config, ctx, interface=interface, host_addresses=host_addresses)
    )


def event_json(event: events_pb2.Event) -> str:
    """One event as a compact JSON line (proto field names)."""
    d = json_format.MessageToDict(event, preserving_proto_field_name=True)
    return json.dumps(d, separators=(",", ":"), sort_keys=True)


def _sensor_config(agent_config: Path | None) -> tuple[NetSensorConfig, str | None]:
    """`sources.netsensor` of an agent configuration file (defaults without one) and the
    configured agent id."""
    if agent_config is None:
        return NetSensorConfig(), None
    from agent import config as cfgmod

    loaded = cfgmod.load(agent_config)
    found = getattr(loaded.sources, "netsensor", None)
    return (found if isinstance(found, NetSensorConfig) else NetSensorConfig()), loaded.agent_id


def cmd_replay(ns: argparse.Namespace) -> int:
    config, agent_id = _sensor_config(ns.config)
    host = socket.gethostname()
    ctx = SourceContext(agent_id=agent_id or host.split(".")[0], host=host, clock_ns=time.time_ns)
    count = 0
    for event in replay_events(
        Path(ns.file),
        config,
        ctx,
        interface=ns.interface,
        host_addresses=frozenset(ns.host_address or ()),
    ):
        sys.stdout.write(event_json(event) + "\n")
        count += 1
    print(f"{ns.file}: {count} events", file=sys.stderr)
    return 0
