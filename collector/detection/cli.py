"""`canhgac-collector rules ...`: test, lint and replay detection rules without a running collector.

* `rules test [PATHS]` runs each rule file's golden events (`NAME.golden.yml`) and checks that
  every `stable` or `test` rule that alerts has a positive and a negative case. Exit 1 on any
  failure: CI runs it over `rules/`.
* `rules lint [PATHS]` loads the rules as the collector would and runs the lint checks
  (`lint.py`); exit 1 when a rule does not load or a check reports an error.
* `rules replay --from T --to T` runs the configured rules over the events stored in that time
  range and prints the alerts they raise now (nothing is stored).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
DEFAULT_RULES = ["rules"]


def cmd_test(ns: argparse.Namespace) -> int:
    from collector.detection.goldens import check_library

    report = check_library(ns.paths or DEFAULT_RULES)
    for result in report.results:
        if ns.verbose or not result.ok:
            print(result)
    for problem in report.problems:
        print(f"FAIL: {problem}")
    failed = sum(not r.ok for r in report.results) + len(report.problems)
    print(f"{len(report.results) - sum(not r.ok for r in report.results)} passed, {failed} failed")
    return 0 if report.ok else 1


def cmd_lint(ns: argparse.Namespace) -> int:
    from collector.detection.lint import lint_paths

    issues = lint_paths(ns.paths or DEFAULT_RULES)
    for issue in issues:
        print(issue)
    errors = sum(i.severity == "error" for i in issues)
    print(f"{errors} errors, {len(issues) - errors} warnings")
    return 1 if errors else 0


def parse_time(text: str) -> int:
    """An ISO 8601 time (a date alone is midnight UTC; no zone means UTC) as Unix ns."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def cmd_replay(ns: argparse.Namespace) -> int:
    from collector import config as cfgmod
    from collector.detection.replay import replay

    config = cfgmod.load(ns.config)
    paths = ns.rules or [str(p) for p in config.detection.rule_paths]
    result = replay(config, paths, ns.start, ns.end, agent_id=ns.agent)
    for error in result.load_errors:
        print(f"rule not loaded: {error}", file=sys.stderr)
    for alert in result.alerts:
        if ns.json:
            print(json.dumps(_alert_json(alert), ensure_ascii=False))
        else:
            print(f"{alert.rule_id}  {alert.host or alert.agent_id}  {alert.summary}")
    print(
        f"{result.events} events replayed, {len(result.alerts)} alerts",
        file=sys.stderr,
    )
    return 0


def _alert_json(alert: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(alert, preserving_proto_field_name=True)
    return out


def add_rules_commands(sub: Any, with_config: WithConfig) -> None:
    rules = sub.add_parser("rules", help="test, lint and replay detection rules").add_subparsers(
        dest="rules_command", required=True
    )
    test = rules.add_parser("test", help="run the rules' golden events")
    test.add_argument("paths", nargs="*", type=Path, help="rule files or directories (rules/)")
    test.add_argument("-v", "--verbose", action="store_true", help="print passing cases too")
    test.set_defaults(fn=cmd_test)

    lint = rules.add_parser("lint", help="load the rules and check them")
    lint.add_argument("paths", nargs="*", type=Path, help="rule files or directories (rules/)")
    lint.set_defaults(fn=cmd_lint)

    replay = with_config(rules.add_parser("replay", help="run rules over stored events"))
    replay.add_argument("--from", dest="start", type=parse_time, required=True)
    replay.add_argument("--to", dest="end", type=parse_time, required=True)
    replay.add_argument("--agent", help="only this agent's events")
    replay.add_argument(
        "--rules", nargs="*", help="rule files or directories (default: the configured ones)"
    )
    replay.add_argument("--json", action="store_true", help="one JSON alert per line")
    replay.set_defaults(fn=cmd_replay)
