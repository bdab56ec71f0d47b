"""Structured logs: JSON lines with fields, text for terminals, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from canhgac.logs import setup_logging


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_fields_and_redact_secrets(restore_root: object) -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    logging.getLogger("canhgac.test").info(
        "agent connected",
        extra={"fields": {"agent_id": "web-01", "token": "s3cret", "postgres_dsn": "x"}},
    )
    logging.getLogger("canhgac.test").debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["message"] == "agent connected"
    assert rec["level"] == "info"
    assert rec["logger"] == "canhgac.test"
    assert rec["agent_id"] == "web-01"
    assert rec["token"] == "[redacted]"
    assert rec["postgres_dsn"] == "[redacted]"
    assert "s3cret" not in out.getvalue()
    assert rec["time"].endswith("Z")


def test_text_format_and_exceptions(restore_root: object) -> None:
    out = io.StringIO()
    setup_logging("debug", "text", stream=out)
    log = logging.getLogger("canhgac.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed", extra={"fields": {"seq": 7}})
    text = out.getvalue()
    assert "error   canhgac.test: it failed seq=7" in text
    assert "ValueError: boom" in text
