"""Audit records the collector writes about itself: the configuration it runs with, and the
rule set it loaded or reloaded.

An assessor must be able to tell from the audit chain which configuration and which rules
were in force at any moment. At every start the collector records `config.apply` with the
SHA-256 of its configuration (secrets removed first, so the digest proves nothing about a
password) and the list of top-level sections that differ from the previous start's; each
rule load records `rules.load` (start) or `rules.reload` (SIGHUP, file change) with a digest
of the rule files and the number of rules loaded and broken. Actor: `collector:<name>`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from collector.audit.model import AuditEntry, AuditRecord, AuditStore
from collector.config import CollectorConfig
from collector.detection.control import ReloadSummary
from collector.evidence.redact import redact

PAGE = 1000


def redacted_config(config: CollectorConfig) -> dict[str, Any]:
    """The configuration as JSON-able data with every secret removed."""
    data = redact(config.model_dump(mode="json"))
    if not isinstance(data, dict):
        raise TypeError("a configuration dumps to a mapping")
    return data


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def section_digests(config: Mapping[str, Any]) -> dict[str, str]:
    return {key: _digest(value) for key, value in sorted(config.items())}


def _last(store: AuditStore, action: str) -> AuditRecord | None:
    """The newest record of `action` (the log is read forwards in pages: it is small)."""
    last: AuditRecord | None = None
    after = 0
    while True:
        page = store.audit_records(after_seq=after, limit=PAGE, action_prefix=action)
        if not page:
            return last
        last = page[-1]
        after = page[-1].seq


def record_config(store: AuditStore, config: CollectorConfig, *, at_ns: int) -> AuditRecord | None:
    """Record `config.apply` when the configuration differs from the one last recorded (or
    none was); None when it is unchanged."""
    sections = section_digests(redacted_config(config))
    digest = _digest(sections)
    previous = _last(store, "config.apply")
    before: Mapping[str, object] = {}
    if previous is not None:
        if previous.detail.get("sha256") == digest:
            return None
        found = previous.detail.get("sections")
        before = found if isinstance(found, Mapping) else {}
    changed = sorted(k for k in sections.keys() | before.keys() if sections.get(k) != before.get(k))
    entry = AuditEntry(
        f"collector:{config.name}",
        "config.apply",
        config.name,
        {
            "sha256": digest,
            "sections": sections,
            "changed": changed if previous is not None else ["(first start)"],
        },
    )
    return store.append_audit(entry, at_ns=at_ns)


def rules_digest(paths: Iterable[str]) -> tuple[str, list[dict[str, str]]]:
    """SHA-256 over the rule files (path and content digest, sorted by path), and the list."""
    files = []
    for path in sorted(set(paths)):
        try:
            content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:  # removed since it loaded: recorded as such, not skipped
            content = f"unreadable: {exc.strerror or exc}"
        files.append({"path": path, "sha256": content})
    return _digest(files), files


def record_rules(
    store: AuditStore,
    collector_name: str,
    summary: ReloadSummary,
    *,
    at_ns: int,
    reload: bool,
) -> AuditRecord:
    digest, files = rules_digest(rule.path for rule in summary.rules)
    entry = AuditEntry(
        f"collector:{collector_name}",
        "rules.reload" if reload else "rules.load",
        collector_name,
        {
            "rules_sha256": digest,
            "files": len(files),
            "loaded": summary.loaded,
            "broken": len(summary.errors),
            "errors": summary.errors[:20],
        },
    )
    return store.append_audit(entry, at_ns=at_ns)
