"""The collector's own audit records: the configuration and the rules in force."""

from __future__ import annotations

import json
from pathlib import Path

from collector.audit.model import verify_chain
from collector.audit.system_events import record_config, record_rules, rules_digest
from collector.config import CollectorConfig
from collector.detection.control import ReloadSummary, RuleInfo
from collector.storage.sqlite import SqliteStore

T0 = 1_800_000_000 * 10**9
DSN_PASSWORD = "mật-khẩu-csdl-rất-bí-mật"


def config(**overrides: object) -> CollectorConfig:
    data: dict[str, object] = {
        "name": "so-tttt-thu",
        "storage": {
            "kind": "postgres",
            "postgres_dsn": f"postgresql://canhgac:{DSN_PASSWORD}@db.example/canhgac",
        },
    }
    data.update(overrides)
    return CollectorConfig.model_validate(data)


def test_config_is_recorded_once_per_change_without_its_secrets(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    first = record_config(store, config(), at_ns=T0)
    assert first is not None
    assert first.action == "config.apply"
    assert first.actor == "collector:so-tttt-thu"
    assert first.detail["changed"] == ["(first start)"]
    # The same configuration again (a restart) adds nothing.
    assert record_config(store, config(), at_ns=T0 + 1) is None
    # A changed section is named.
    changed = record_config(store, config(http={"listen": "127.0.0.1:9999"}), at_ns=T0 + 2)
    assert changed is not None
    assert changed.detail["changed"] == ["http"]
    records = store.audit_records()
    assert [r.action for r in records] == ["config.apply", "config.apply"]
    assert verify_chain(records).ok
    dumped = json.dumps([r.detail for r in records], ensure_ascii=False)
    assert DSN_PASSWORD not in dumped
    store.close()


def test_rules_record_digests_the_files_in_force(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    rule = tmp_path / "ssh.yml"
    rule.write_text("title: one\n")
    summary = ReloadSummary(1, [], [], [], [RuleInfo("r1", "one", "high", str(rule))])
    loaded = record_rules(store, "so", summary, at_ns=T0, reload=False)
    assert loaded.action == "rules.load"
    assert loaded.detail["files"] == 1
    rule.write_text("title: two\n")
    broken = ReloadSummary(1, ["bad.yml: cannot parse"], [], [], summary.rules)
    reloaded = record_rules(store, "so", broken, at_ns=T0 + 1, reload=True)
    assert reloaded.action == "rules.reload"
    assert reloaded.detail["broken"] == 1
    assert reloaded.detail["rules_sha256"] != loaded.detail["rules_sha256"]
    # A file gone since it loaded is recorded as such, not skipped.
    rule.unlink()
    _, files = rules_digest([str(rule)])
    assert files[0]["sha256"].startswith("unreadable")
    store.close()
