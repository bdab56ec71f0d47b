"""The console in a real headless Chromium against the real collector and agent: log in, watch
an alert arrive live, open it, acknowledge it with the keyboard, find the action in the audit
trail. Screenshots of each step go to artifacts/console/."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.requirements import require

from .harness import BIN, ROOT, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "console"
PASSWORD = "mật khẩu thử nghiệm 2026"
CANARY_RULE = """title: Canary account logged in
id: 0b6f54a2-3f0e-4b53-8d8c-3a3c5c0f7d11
status: experimental
description: A login by the test's canary account.
logsource: {product: linux, service: sshd}
detection:
  selection:
    event.action: ssh_login
    event.outcome: success
    user.name: canary
  condition: selection
level: high
"""
USERS_ADD = [str(BIN / "canhgac-collector"), "users", "add"]
TOKENS_CREATE = [str(BIN / "canhgac-collector"), "api-tokens", "create"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    require(CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK), "chromium (/usr/bin/chromium)")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "canary.yml").write_text(CANARY_RULE)
    s = System(tmp_path, rule_paths=[rules], http=True)
    s.start_collector()
    cfg = str(s.collector_cfg)
    subprocess.run(
        [*USERS_ADD, "op1", "--role", "operator", "--password-file", "-", "--config", cfg],
        input=PASSWORD.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )
    s.start_agent()
    try:
        yield s
    finally:
        s.stop()


def canary_login(system: System) -> int:
    """Append the line that makes the rule fire; how many events were stored before it."""
    before = system.stored_count()
    stamp = time.strftime("%b %e %H:%M:%S")
    with system.log.open("a") as fh:
        fh.write(
            f"{stamp} {socket.gethostname()} sshd[4243]: Accepted publickey for canary "
            "from 198.51.100.20 port 50000 ssh2\n"
        )
    return before


def test_an_alert_arrives_live_is_acknowledged_and_audited(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{system.http_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
            page.goto(f"{base}/alerts")
            assert "/login" in page.url
            page.fill("input[name=username]", "op1")
            page.fill("input[name=password]", PASSWORD)
            page.screenshot(path=str(SHOTS / "1-login.png"))
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/alerts")
            expect(page.locator("h1")).to_have_text("Alerts")
            rows = page.locator("#alert-list tbody tr")
            assert rows.count() == 0
            # The stream is open once the hub counts a client.
            wait_for(lambda: b"console_live_clients 1.0" in _metrics(system), 10, "the stream")
            page.screenshot(path=str(SHOTS / "2-alerts-empty.png"))

            before = canary_login(system)
            wait_for(lambda: system.stored_count() > before, 30, "the canary event stored")
            stored_at = time.monotonic()
            # The row appears without a reload: 2 s from the event being in the collector.
            row = page.locator("#alert-list tbody tr", has_text="Canary account logged in")
            row.wait_for(timeout=max(1, 2000 - (time.monotonic() - stored_at) * 1000))
            page.screenshot(path=str(SHOTS / "3-alert-live.png"))

            page.keyboard.press("j")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/alerts/*")
            expect(page.locator("#alert-status")).to_have_text("open")
            page.screenshot(path=str(SHOTS / "4-alert-detail.png"))
            page.keyboard.press("a")
            page.wait_for_load_state()
            expect(page.locator("#alert-status")).to_have_text("acknowledged")
            page.screenshot(path=str(SHOTS / "5-acknowledged.png"))

            page.goto(f"{base}/audit")
            audit = page.locator("#audit-list tbody tr", has_text="alert.acknowledge")
            expect(audit).to_have_count(1)
            expect(audit).to_contain_text("op1")
            page.screenshot(path=str(SHOTS / "6-audit.png"))
        finally:
            browser.close()


def _metrics(system: System) -> bytes:
    """The collector's metrics, read with a fresh admin token."""
    out = subprocess.run(
        [*TOKENS_CREATE, "--role", "admin", "--config", str(system.collector_cfg)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    token = out.stdout.decode().strip().splitlines()[-1].strip()
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{system.http_port}/metrics",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  # loopback http
        body: bytes = answer.read()
    return body
