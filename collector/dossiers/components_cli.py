"""`canhgac-collector components ID`: a system's devices, services and addresses as its agents
report them, in the shape of the dossier's Part I lists (YAML by default, or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import yaml

from collector.dossiers.components import DEFAULT_MAX_EVENTS, system_components

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def cmd_components(ns: argparse.Namespace) -> int:
    from collector.enroll.cli import open_store

    store = open_store(ns)
    try:
        data = system_components(store, ns.system_id, max_events=ns.max_events).to_dict()
    finally:
        store.close()
    if ns.format == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return 0


def add_components_commands(sub: Any, with_config: WithConfig) -> None:
    p = with_config(
        sub.add_parser(
            "components",
            help="a system's devices, services and IP addresses from its agents (dossier Part I)",
        )
    )
    p.add_argument("system_id", metavar="ID", help="the system's id")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.add_argument(
        "--max-events",
        type=_positive,
        default=DEFAULT_MAX_EVENTS,
        help=f"events read per agent at most (default {DEFAULT_MAX_EVENTS})",
    )
    p.set_defaults(fn=cmd_components)
