"""The assessor's evidence page against the real app and a real SQLite file: download, then
verify offline with the key the page shows; scope, expiry, roles, CSRF, bad input, the audit
record and the temporary file."""

from __future__ import annotations

import html
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient

from collector.config import CollectorConfig, DossiersConfig, StorageConfig
from collector.evidence.period import Period
from collector.evidence.signing import load_public_key
from collector.evidence.verify import verify_bundle
from collector.metrics import CollectorMetrics
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from collector.web.app import build_app
from collector.web.auth.passwords import hash_password
from collector.web.auth.users import User
from collector.web.console.evidence import EXPORT_DIR, download_name
from tests.collector.dossiers.test_findings import system
from tests.collector.evidence import world

PASSWORD = "mật khẩu đủ dài 123"
NOW_NS = world.ns(world.NOW)
DAY = 86_400 * 10**9
PERIOD = {"from": "2026-11-01", "to": "2026-11-03"}


@dataclass
class Site:
    app: Starlette
    store: SqliteStore
    config: CollectorConfig
    registry: CollectorRegistry
    now: list[int]

    def client(self, username: str) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        client.cookies.set("lang", "en")
        page = client.get("/login")
        data = {"username": username, "password": PASSWORD, "csrf": csrf_of(page.text)}
        assert client.post("/login", data=data).status_code == 303
        return client

    def errors(self, error_type: str) -> float:
        value = self.registry.get_sample_value(
            "canhgac_collector_errors_total", {"stage": "console", "error_type": error_type}
        )
        return value or 0.0

    @property
    def export_dir(self) -> Path:
        return self.config.state_dir / EXPORT_DIR


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found.group(1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = tmp_path / "c.db"
    store = SqliteStore(db)
    store.migrate()
    world.populate(store)  # system "dvc" with its agents and events
    store.upsert_system(system(world.REGIMES["vn-2026"], "other", name="Hệ thống khác"))
    digest = hash_password(PASSWORD)
    users = [
        User("u-assessor", "assessor", NOW_NS, systems=("dvc",), valid_until_ns=NOW_NS + DAY),
        User("u-admin", "admin", NOW_NS),
        User("u-operator", "operator", NOW_NS),
        User("u-soc", "soc", NOW_NS, systems=("dvc",)),
    ]
    for user in users:
        store.add_user(User(**{**user.__dict__, "password_hash": digest}))
    base = world.config(tmp_path)
    config = base.model_copy(update={"storage": StorageConfig(kind="sqlite", sqlite_path=db)})
    registry = CollectorRegistry()
    now = [NOW_NS]
    worker = StoreWorker(store)
    app = build_app(
        "Tỉnh Thử",
        worker,
        CollectorMetrics.create(registry),
        lambda: True,
        state_dir=config.state_dir,
        clock=lambda: now[0],
        config=config,
    )
    yield Site(app, store, config, registry, now)
    worker.close()


def public_key_of(text: str) -> bytes:
    found = re.search(r'<pre class="key">(.*?)</pre>', text, re.S)
    assert found
    return html.unescape(found.group(1)).encode()


def export(client: TestClient, csrf: str | None, **fields: str) -> httpx.Response:
    data = {"system": "dvc", **PERIOD, **fields}
    if csrf is not None:
        data["csrf"] = csrf
    answer: httpx.Response = client.post("/evidence/export", data=data)
    return answer


def test_assessor_downloads_a_bundle_that_verifies_offline(site: Site, tmp_path: Path) -> None:
    client = site.client("u-assessor")
    assert client.get("/").headers["location"] == "/evidence"
    page = client.get("/evidence")
    assert page.status_code == 200
    assert 'value="dvc"' in page.text
    assert 'value="other"' not in page.text  # outside the assessor's scope
    assert 'href="/evidence"' in page.text
    assert 'href="/alerts"' not in page.text  # the nav shows only what the role may use
    assert "evidence verify" in page.text
    pem = public_key_of(page.text)

    answer = client.post(
        "/evidence/export",
        data={"system": "dvc", **PERIOD, "raw_events": "1", "csrf": csrf_of(page.text)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-tar"
    disposition = answer.headers["content-disposition"]
    assert disposition == 'attachment; filename="evidence-dvc-2026-11-01-2026-11-03.tar"'
    bundle = tmp_path / "downloaded.tar"
    bundle.write_bytes(answer.content)

    report = verify_bundle(bundle, load_public_key(pem, location="page"))
    assert report.ok, report.problems
    assert report.manifest is not None
    assert report.manifest["system"]["id"] == "dvc"
    with tarfile.open(bundle) as tar:
        assert "events.jsonl.gz" in tar.getnames()  # the checkbox was honoured

    records = site.store.audit_records(action_prefix="evidence.export")
    assert [(r.actor, r.target) for r in records] == [("u-assessor", "dvc")]
    assert list(site.export_dir.iterdir()) == []  # the temporary bundle is gone


def test_a_system_outside_the_scope_is_unknown(site: Site) -> None:
    client = site.client("u-assessor")
    csrf = csrf_of(client.get("/evidence").text)
    for system_id in ("other", "does-not-exist"):
        answer = export(client, csrf, system=system_id)
        assert answer.status_code == 404
        assert "No such system." in answer.text
    assert site.errors("unknown_system") == 2
    assert site.store.audit_records(action_prefix="evidence.export") == []


def test_admin_sees_every_system_and_exports_as_itself(site: Site) -> None:
    client = site.client("u-admin")
    page = client.get("/evidence")
    assert 'value="dvc"' in page.text
    assert 'value="other"' in page.text
    assert 'href="/alerts"' in page.text
    assert client.get("/").headers["location"] == "/alerts"
    answer = client.post(
        "/evidence/export", data={"system": "other", **PERIOD, "csrf": csrf_of(page.text)}
    )
    assert answer.status_code == 200
    records = site.store.audit_records(action_prefix="evidence.export")
    assert [(r.actor, r.target) for r in records] == [("u-admin", "other")]


def test_an_expired_assessor_is_refused(site: Site) -> None:
    client = site.client("u-assessor")
    csrf = csrf_of(client.get("/evidence").text)
    site.now[0] = NOW_NS + DAY
    assert client.get("/evidence").status_code == 401
    assert export(client, csrf).status_code == 401
    browser = client.get("/evidence", headers={"Accept": "text/html"})
    assert browser.headers["location"] == "/login?next=/evidence"
    assert site.store.audit_records(action_prefix="evidence.export") == []


@pytest.mark.parametrize("username", ["u-operator", "u-soc"])
def test_other_roles_are_forbidden(site: Site, username: str) -> None:
    client = site.client(username)
    assert client.get("/evidence").status_code == 403
    # Any page of the session carries its CSRF token; the role check refuses first anyway.
    token = client.get("/login").text
    assert export(client, csrf_of(token)).status_code == 403


def test_operator_nav_has_no_evidence_link(site: Site) -> None:
    client = site.client("u-operator")
    page = client.get("/alerts")
    assert page.status_code == 200
    assert 'href="/evidence"' not in page.text
    assert 'href="/alerts"' in page.text


def test_export_needs_the_csrf_token(site: Site) -> None:
    client = site.client("u-assessor")
    client.get("/evidence")
    assert export(client, None).status_code == 403
    assert export(client, "wrong").status_code == 403
    assert site.store.audit_records(action_prefix="evidence.export") == []


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-03", "2026-11-01", "--from must be before --to"),
        ("2026-11-01", "2026-11-01", "--from must be before --to"),
        ("1999-01-01", "2000-02-01", "starts before 2000"),
        ("2026-11-01", "2031-01-01", "more than a day in the future"),
        ("yesterday", "2026-11-03", "expected YYYY-MM-DD"),
        ("", "2026-11-03", "expected YYYY-MM-DD"),
    ],
)
def test_bad_periods_are_refused_with_the_reason(
    site: Site, start: str, end: str, message: str
) -> None:
    client = site.client("u-assessor")
    csrf = csrf_of(client.get("/evidence").text)
    answer = client.post(
        "/evidence/export", data={"system": "dvc", "from": start, "to": end, "csrf": csrf}
    )
    assert answer.status_code == 400
    assert "Bad period:" in answer.text
    assert message in answer.text
    assert f'value="{start}"' in answer.text  # the form keeps what was typed
    assert site.errors("bad_period") == 1
    assert client.get("/evidence").status_code == 200  # still serving


def test_a_failing_export_is_reported_and_counted(site: Site) -> None:
    evidence = site.app.state.evidence
    bad = DossiersConfig(regime_dir=world.ROOT / "rules" / "regimes", regime="no-such-regime")
    evidence.config = site.config.model_copy(update={"dossiers": bad})
    client = site.client("u-assessor")
    csrf = csrf_of(client.get("/evidence").text)
    answer = export(client, csrf)
    assert answer.status_code == 400
    assert "no-such-regime" in answer.text
    assert site.errors("export_refused") == 1
    assert list(site.export_dir.iterdir()) == []
    evidence.config = site.config
    assert export(client, csrf).status_code == 200


def test_without_a_configuration_the_page_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    store.add_user(User("u-admin", "admin", NOW_NS, password_hash=hash_password(PASSWORD)))
    worker = StoreWorker(store)
    app = build_app(
        "x",
        worker,
        CollectorMetrics.create(CollectorRegistry()),
        lambda: True,
        state_dir=tmp_path / "state",
        clock=lambda: NOW_NS,
    )
    try:
        site = Site(app, store, world.config(tmp_path), CollectorRegistry(), [NOW_NS])
        client = site.client("u-admin")
        page = client.get("/evidence")
        assert page.status_code == 503
        assert "not enabled" in page.text
    finally:
        worker.close()


def test_download_names_are_safe() -> None:
    period = Period(world.START, world.END)
    assert download_name("dvc", period) == "evidence-dvc-2026-11-01-2026-11-03.tar"
    assert download_name('a"b/../c', period) == "evidence-a_b_.._c-2026-11-01-2026-11-03.tar"
    assert download_name("..", period) == "evidence-system-2026-11-01-2026-11-03.tar"
