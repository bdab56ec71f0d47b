"""`canhgac-agent replay FILE`: the command's arguments, apart from the replay itself.

agent/cli.py builds its parser for every run, `run` included; the replay module brings the
sensor's decoders and protobuf's json_format, which the running agent (without the network
sensor) would otherwise keep in its memory for nothing. So the parser gets the arguments from
here, and the replay module is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_replay_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `replay` to agent/cli.py's build_parser()."""
    sp = subparsers.add_parser(
        "replay", help="run a pcap/pcapng file through the network sensor, print events as JSON"
    )
    sp.add_argument("file", help="a pcap or pcapng file (may be gzip-compressed)")
    sp.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="take sources.netsensor from this agent configuration (default: built-in defaults)",
    )
    sp.add_argument("--interface", help="interface name to put in flow events")
    sp.add_argument(
        "--host-address",
        action="append",
        help="an address of the monitored host, for flow direction (repeatable)",
    )
    sp.set_defaults(fn=_replay)


def _replay(ns: argparse.Namespace) -> int:
    from agent.netsensor.replay import cmd_replay

    return cmd_replay(ns)
