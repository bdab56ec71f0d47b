"""How much of a Sigma rule set the collector can run: load it through the real engine and
count what was refused, grouped by reason.

    .venv/bin/python scripts/sigma_compat.py [RULE_DIR ...] [--max-unsupported-pct 5]

RULE_DIR defaults to /tmp/sigma-rules (a checkout of the public rules' `rules/linux` and
`rules/network`; public rule text is read at run time only, never copied into this repository).
Exits 0 unless `--max-unsupported-pct` is given and the unsupported share is above it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from collector.detection.base import RuleLoadError
from collector.detection.engine import DetectionEngine

DEFAULT_RULE_DIR: Final = Path("/tmp/sigma-rules")  # noqa: S108  # read only, never written

# Parts of a refusal message that differ between rules with the same cause.
_DETAIL_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r" on field '[^']*'"), ""),
    (re.compile(r" \(not in the canhgac field vocabulary\)"), ""),
    (re.compile(r" in (/\S+)$"), ""),
)


@dataclass(frozen=True)
class CompatReport:
    """What loading a rule set produced: counts and the refusal reasons with their counts."""

    total: int
    loaded: int
    reasons: Counter[str]

    @property
    def unsupported(self) -> int:
        return self.total - self.loaded

    @property
    def unsupported_pct(self) -> float:
        return 100.0 * self.unsupported / self.total if self.total else 0.0


def reason_key(error: RuleLoadError) -> str:
    """The refusal reason without the rule-specific detail (field, file), for grouping."""
    message = error.message
    for pattern, replacement in _DETAIL_PATTERNS:
        message = pattern.sub(replacement, message)
    return message


def check_rules(paths: Sequence[Path]) -> CompatReport:
    """Load every rule under `paths` as the collector does and count the refusals.

    Each error the engine reports stands for one rule (or one file that could not be parsed),
    so the total is what loaded plus what was refused.
    """
    engine = DetectionEngine()
    result = engine.load(list(paths))
    reasons = Counter(reason_key(err) for err in result.errors)
    return CompatReport(result.loaded + len(result.errors), result.loaded, reasons)


def render(report: CompatReport) -> str:
    lines = [
        f"total rules:  {report.total}",
        f"loaded:       {report.loaded}",
        f"unsupported:  {report.unsupported} ({report.unsupported_pct:.1f}%)",
    ]
    if report.reasons:
        lines.append("unsupported reasons:")
        width = len(str(max(report.reasons.values())))
        for reason, count in sorted(report.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:>{width}}  {reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_RULE_DIR])
    parser.add_argument(
        "--max-unsupported-pct",
        type=float,
        default=None,
        help="exit 1 when more than this percentage of the rules is unsupported",
    )
    args = parser.parse_args(argv)
    report = check_rules(args.paths)
    print(render(report))
    limit: float | None = args.max_unsupported_pct
    if limit is not None and report.unsupported_pct > limit:
        print(f"unsupported share {report.unsupported_pct:.1f}% is above {limit}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
