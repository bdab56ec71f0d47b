"""No secret of the configuration reaches a bundle."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.evidence.redact import REDACTED, redact, scrub_text
from collector.storage.sqlite import SqliteStore
from tests.collector.evidence import tamper, world


def test_secrets_are_removed_by_type_by_name_and_from_urls() -> None:
    data = {
        "name": "tinh-x",
        "password": "pw-1",
        "smtp": {"user": "u", "smtp_password": "pw-2", "key_file": "/etc/canhgac/k.pem"},
        "api_token": "tok-3",
        "client-secret": "sec-4",
        "upstream": ["https://user:pw-5@soc.example/api", "plain"],
        "dsn_text": "host=db user=x password=pw-6",
        "other": "host=db user=x password='pw 7'",
        "empty_token": "",
    }
    out = redact(data)
    text = json.dumps(out)
    for secret in ("pw-1", "pw-2", "tok-3", "sec-4", "pw-5", "pw-6", "pw 7"):
        assert secret not in text
    assert out["smtp"]["key_file"] == "/etc/canhgac/k.pem"  # a place, not a secret
    assert out["upstream"] == [f"https://user:{REDACTED}@soc.example/api", "plain"]
    assert out["name"] == "tinh-x"
    assert out["empty_token"] == ""
    assert scrub_text("no secret here") == "no secret here"


def test_the_bundles_config_holds_no_password(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    try:
        store.migrate()
        world.populate(store)
        result = world.export(store, tmp_path, Ed25519PrivateKey.generate())
    finally:
        store.close()
    members = tamper.read(result.path)
    for name, data in members.items():
        assert world.DB_PASSWORD.encode() not in data, name
    config = json.loads(members["config.json"])
    assert config["storage"]["postgres_dsn"] == REDACTED
    assert config["name"] == "tinh-x"
