"""Reading Sigma rule files: every file on its own, so one broken file costs only itself.

`read_rule_files()` walks the given files and directories (recursively, `*.yml` and `*.yaml`,
except the golden event files `*.golden.yml` beside the rules and the `regimes/` data folders),
parses each with pySigma and returns the rules that parsed cleanly plus one RuleLoadError per
problem (unreadable file, YAML syntax error with its line, Sigma schema error, duplicate id).
Cross-file work (references from correlations to base rules) is left to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from uuid import UUID

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule, SigmaRuleBase

from collector.detection.base import RuleLoadError

RULE_SUFFIXES: Final[frozenset[str]] = frozenset({".yml", ".yaml"})
# A rule file's golden events (`NAME.golden.yml`, see goldens.py) sit beside it: not rules.
GOLDEN_SUFFIXES: Final[tuple[str, ...]] = (".golden.yml", ".golden.yaml")
# Folders of rules/ that hold other data, not Sigma rules: the legal regimes (collector/dossiers).
NON_RULE_DIRS: Final[frozenset[str]] = frozenset({"regimes"})

# pySigma reports most schema problems as SigmaError but lets plain Python errors escape on some
# malformed values (a detection that is a number, a tag that is a list ...). A broken file must
# never stop the others from loading, so these are caught per file and reported like the rest.
_PARSE_ERRORS: Final = (SigmaError, TypeError, AttributeError, KeyError, ValueError)


@dataclass
class RuleFiles:
    """The parsed rules of a set of files, with the file each came from, and the failures."""

    rules: list[tuple[Path, SigmaRule | SigmaCorrelationRule]] = field(default_factory=list)
    errors: list[RuleLoadError] = field(default_factory=list)


def rule_id(rule: SigmaRuleBase) -> str:
    """The identifier alerts and correlations use: the Sigma `id`, else its `name`, else ""."""
    if rule.id is not None:
        return str(rule.id)
    return str(rule.name or "")


def reference_key(reference: str) -> str:
    """A correlation's reference to a rule, spelled the way `rule_id()` spells ids."""
    try:
        return str(UUID(reference))
    except ValueError:
        return reference


def find_rule_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[RuleLoadError]]:
    """The rule files under `paths` in a stable order, and the paths that do not exist."""
    files: list[Path] = []
    errors: list[RuleLoadError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in RULE_SUFFIXES
                    and not p.name.endswith(GOLDEN_SUFFIXES)
                    and not NON_RULE_DIRS.intersection(p.relative_to(path).parts[:-1])
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            errors.append(RuleLoadError(str(path), "", "no such rule file or directory"))
    return files, errors


def read_rule_files(paths: Sequence[Path | str]) -> RuleFiles:
    """Parse every rule file under `paths`; see the module docstring."""
    files, errors = find_rule_files(paths)
    result = RuleFiles(errors=errors)
    seen: dict[str, Path] = {}
    for path in files:
        for rule in _read_one(path, result.errors):
            ident = rule_id(rule)
            if not ident:
                result.errors.append(RuleLoadError(str(path), "", "rule has neither id nor name"))
                continue
            if ident in seen:
                message = f"duplicate rule id, first defined in {seen[ident]}"
                result.errors.append(RuleLoadError(str(path), ident, message))
                continue
            name = rule.name
            if name and name != ident and name in seen:
                message = f"duplicate rule name '{name}', first defined in {seen[name]}"
                result.errors.append(RuleLoadError(str(path), ident, message))
                continue
            seen[ident] = path
            if name:
                seen[name] = path
            result.rules.append((path, rule))
    return result


def _read_one(path: Path, errors: list[RuleLoadError]) -> list[SigmaRule | SigmaCorrelationRule]:
    where = str(path)
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except OSError as exc:
        errors.append(RuleLoadError(where, "", f"cannot read: {exc.strerror or exc}"))
        return []
    except UnicodeDecodeError as exc:
        errors.append(RuleLoadError(where, "", f"not UTF-8 text: {exc.reason}"))
        return []
    except yaml.YAMLError as exc:
        errors.append(RuleLoadError(where, "", f"invalid YAML: {_yaml_reason(exc)}"))
        return []
    for number, document in enumerate(documents, start=1):
        if document is not None and not isinstance(document, dict):
            message = f"YAML document {number} is a {type(document).__name__}, not a mapping"
            errors.append(RuleLoadError(where, "", message))
            return []
    try:
        collection = SigmaCollection.from_dicts(
            documents,
            collect_errors=True,
            source=SigmaRuleLocation(path),
            resolve_references=False,
        )
    except _PARSE_ERRORS as exc:
        errors.append(RuleLoadError(where, "", f"invalid Sigma rule: {_sigma_reason(exc)}"))
        return []
    good: list[SigmaRule | SigmaCorrelationRule] = []
    reported: set[int] = set()
    for rule in collection.rules:
        if rule.errors:
            for err in rule.errors:
                reported.add(id(err))
                errors.append(RuleLoadError(where, rule_id(rule), _sigma_reason(err)))
        elif isinstance(rule, (SigmaRule, SigmaCorrelationRule)):
            good.append(rule)
    for err in collection.errors:
        if id(err) not in reported:
            errors.append(RuleLoadError(where, "", _sigma_reason(err)))
    if collection.filters:
        errors.append(RuleLoadError(where, "", "Sigma filters are unsupported; file skipped"))
        return []
    return good


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _sigma_reason(exc: BaseException) -> str:
    # SigmaError.__str__ appends " in <absolute path>", which the RuleLoadError already carries.
    return str(exc.args[0]) if exc.args else type(exc).__name__
