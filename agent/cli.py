"""`canhgac-agent`: run, enroll, validate, example."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import config as cfgmod
from agent.netsensor.command import add_replay_command
from canhgac.errors import CanhGacError, ConfigError
from canhgac.logs import setup_logging

DEFAULT_CONFIG = "/etc/canhgac/agent.yaml"
STDIN = "-"

log = logging.getLogger("canhgac.agent")


def enrollment_problem(config: cfgmod.AgentConfig) -> str | None:
    """Why the shipper cannot connect yet (not enrolled, certificate expired), or None.

    The agent still runs: its sources fill the spool, and the shipper connects as soon as a
    current certificate is on disk (it never connects without one, unless insecure_dev).
    """
    from agent.enroll.identity import IdentityFiles, utcnow

    if config.collector.insecure_dev:
        return None
    try:
        identity = IdentityFiles.for_config(config).load()
        identity.check_current(utcnow())
    except CanhGacError as exc:
        return str(exc)
    if config.agent_id and config.agent_id != identity.agent_id:
        log.warning(
            "agent_id %r in the configuration is not used: this agent is enrolled as %r",
            config.agent_id,
            identity.agent_id,
        )
    return None


def cmd_run(ns: argparse.Namespace) -> int:
    from agent.memory import limit_malloc_arenas
    from agent.runtime import run_forever

    limit_malloc_arenas()
    config = cfgmod.load(ns.config)
    setup_logging(config.logging.level, config.logging.format)
    problem = enrollment_problem(config)
    if problem:
        log.error(
            "nothing will be sent to the collector until this is fixed (events are kept in the "
            "spool meanwhile): %s",
            problem,
        )
    asyncio.run(run_forever(config))
    return 0


def _read_token(ns: argparse.Namespace) -> str:
    if ns.token is not None:
        return str(ns.token)
    try:
        from_stdin = ns.token_file == STDIN
        text = sys.stdin.read() if from_stdin else Path(ns.token_file).read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the token: {exc.strerror}", location=ns.token_file
        ) from None
    return text.strip()


def cmd_enroll(ns: argparse.Namespace) -> int:
    from agent.enroll.client import enroll
    from agent.enroll.identity import IdentityFiles

    config = cfgmod.load(ns.config)
    setup_logging(config.logging.level, config.logging.format)
    token = _read_token(ns)
    files = IdentityFiles.for_config(config)
    hostname = ns.hostname or socket.gethostname()
    enrolled = asyncio.run(enroll(config.collector, files, token, hostname))
    identity = enrolled.identity
    system = f", system {enrolled.system_id}" if enrolled.system_id else ""
    print(f"enrolled as {identity.agent_id}{system}")
    print(
        f"certificate {files.cert_file} (key {files.key_file}) valid until "
        f"{identity.not_after:%Y-%m-%d %H:%M} UTC; the agent renews it by itself"
    )
    return 0


def cmd_validate(ns: argparse.Namespace) -> int:
    cfgmod.load(ns.config)
    print(f"{ns.config}: valid")
    return 0


def cmd_example(ns: argparse.Namespace) -> int:
    sys.stdout.write(cfgmod.example_text())
    return 0


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, told the terminal's width instead of asking shutil for it.

    argparse imports shutil for the width whenever it builds a formatter, and parsing the
    command line builds one (for the sub-commands' names), so every `canhgac-agent run` would
    keep shutil, and with it bz2 and lzma, in its memory (about 1 MB of issue 4's 40). This
    reads the width as shutil.get_terminal_size does: $COLUMNS, else the terminal's, else 80.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # argparse's own margin
        super().__init__(prog, indent_increment, max_help_position, width)


class ArgumentParser(argparse.ArgumentParser):
    """With HelpFormatter by default, for the sub-commands' parsers too (argparse builds a
    formatter for every argument added)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def terminal_columns() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):  # stdout closed, or not a terminal
            columns = 0
    return columns or 80


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="canhgac-agent", description="Canh Gác agent")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, text in (
        ("run", cmd_run, "run the agent"),
        ("validate", cmd_validate, "check a configuration file"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG))
        sp.set_defaults(fn=fn)
    en = sub.add_parser(
        "enroll", help="get this agent's certificate from the collector with a one-time token"
    )
    en.add_argument("--config", "-c", type=Path, default=Path(DEFAULT_CONFIG))
    source = en.add_mutually_exclusive_group(required=True)
    source.add_argument("--token", help="the token from `canhgac-collector tokens create`")
    source.add_argument(
        "--token-file",
        help="read the token from this file ('-': standard input), keeping it out of `ps`",
    )
    en.add_argument("--hostname", help="host name to enroll with (default: this host's)")
    en.set_defaults(fn=cmd_enroll)
    sub.add_parser("example", help="print an example configuration").set_defaults(fn=cmd_example)
    add_replay_command(sub)
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
