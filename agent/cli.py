"""`canhgac-agent`: run, validate, example."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import config as cfgmod
from canhgac.errors import CanhGacError
from canhgac.logs import setup_logging

DEFAULT_CONFIG = "/etc/canhgac/agent.yaml"


def cmd_run(ns: argparse.Namespace) -> int:
    from agent.runtime import run_forever

    config = cfgmod.load(ns.config)
    setup_logging(config.logging.level, config.logging.format)
    asyncio.run(run_forever(config))
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    cfgmod.load(ns.config)
    print(f"{ns.config}: valid")
    return 0


def cmd_example(ns: argparse.Namespace) -> int:
    sys.stdout.write(cfgmod.example_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canhgac-agent", description="Canh Gác agent")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, text in (
        ("run", cmd_run, "run the agent"),
        ("validate", cmd_validate, "check a configuration file"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG))
        sp.set_defaults(fn=fn)
    sub.add_parser("example", help="print an example configuration").set_defaults(fn=cmd_example)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        rc: int = ns.fn(ns)
    except CanhGacError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
