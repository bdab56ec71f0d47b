"""The real app, walked route by route: who gets in, who is refused, and how."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.metrics import CollectorMetrics
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from collector.web.app import build_app
from collector.web.auth.passwords import hash_password
from collector.web.auth.policy import Principal, requires, route_registry
from collector.web.auth.tokens import new_api_token
from collector.web.auth.users import ROLES, Role, User

T0 = 1_700_000_000 * 10**9
HOUR = 3600 * 10**9
PASSWORD = "mật khẩu đủ dài 123"
PUBLIC_PATHS = {"/healthz", "/login", "/api/v1/openapi.json", "/static/{name}"}


@dataclass
class Setup:
    app: Starlette
    store: SqliteStore
    now: list[int]
    tokens: dict[Role, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)


def _make(tmp_path: Path, listen: str = "127.0.0.1:0") -> Iterator[Setup]:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    digest = hash_password(PASSWORD)
    for role in ROLES:
        store.add_user(
            User(
                f"u-{role}",
                role,
                T0,
                systems=("portal",) if role == "soc" else (),
                valid_until_ns=T0 + HOUR if role == "assessor" else 0,
                password_hash=digest,
            )
        )
    now = [T0]
    worker = StoreWorker(store)
    app = build_app(
        "Tỉnh Thử",
        worker,
        CollectorMetrics.create(CollectorRegistry()),
        lambda: True,
        state_dir=tmp_path / "state",
        listen=listen,
        clock=lambda: now[0],
    )
    setup = Setup(app, store, now)
    for role in ROLES:
        text, record = new_api_token(role, T0, 24 * HOUR)
        store.create_api_token(record)
        setup.tokens[role] = text
    yield setup
    worker.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    yield from _make(tmp_path)


def bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> int:
    page = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    data = {"username": username, "password": password, "csrf": match.group(1), "next": "/"}
    status: int = client.post("/login", data=data).status_code
    return status


def session_csrf(client: TestClient) -> str:
    from collector.web.auth.sessions import SESSION_COOKIE

    value: str = client.cookies[SESSION_COOKIE]
    return value


def sample_path(path: str) -> str:
    """The route's path with a sample value for each parameter ({id}, {n:int}, {p:path})."""

    def value(match: re.Match[str]) -> str:
        return "1" if match.group(2) in ("int", "float") else "sample-1"

    return re.sub(r"\{(\w+)(?::(\w+))?\}", value, path)


def test_sample_path_fills_every_parameter() -> None:
    assert sample_path("/api/v1/alerts/{alert_id}") == "/api/v1/alerts/sample-1"
    assert sample_path("/x/{n:int}/{rest:path}") == "/x/1/sample-1"
    assert sample_path("/metrics") == "/metrics"


def test_every_route_refuses_the_unauthenticated_and_the_wrong_roles(setup: Setup) -> None:
    # Every route of the real app, those with path parameters included (with a sample value:
    # the access check runs before the endpoint looks the value up).
    client = setup.client()
    registry = route_registry(setup.app.routes)
    assert {r.path for r in registry} >= {"/", "/healthz", "/metrics", "/login", "/logout"}
    assert any("{" in r.path for r in registry)  # the walk covers parameterised routes
    for route in registry:
        if route.access.public:
            assert route.path in PUBLIC_PATHS
            continue
        path = sample_path(route.path)
        for method in route.methods - {"HEAD"}:
            # No `Accept: text/html`: even a login_redirect route answers 401, not 303.
            anonymous = client.request(method, path)
            assert anonymous.status_code == 401, (method, route.path)
            assert "Bearer" in anonymous.headers["www-authenticate"]
            for role in ROLES:
                answer = client.request(method, path, headers=bearer(setup.tokens[role]))
                if role in route.access.roles:
                    assert answer.status_code not in (401, 403), (method, route.path, role)
                else:
                    assert answer.status_code == 403, (method, route.path, role)
            bad = client.request(method, path, headers=bearer("cgk_000000000000_" + "x" * 43))
            assert bad.status_code == 401


def test_public_routes_stay_open(setup: Setup) -> None:
    client = setup.client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/login").status_code == 200


def test_console_sends_a_browser_to_login_and_back(setup: Setup) -> None:
    client = setup.client()
    answer = client.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/"
    assert login(client, "u-operator") == 303
    home = client.get("/", headers={"Accept": "text/html"})
    assert home.status_code == 303
    assert home.headers["location"] == "/alerts"
    page = client.get("/alerts", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Tỉnh Thử" in page.text


def test_session_cookie_flags(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-admin") == 303
    # The last response set it; check the raw header of a fresh login.
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    answer = client.post(
        "/login", data={"username": "u-admin", "password": PASSWORD, "csrf": csrf.group(1)}
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("cg_session="))
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "max-age=" in lowered
    assert "secure" not in lowered  # loopback listener


def test_cookies_are_secure_off_loopback(tmp_path: Path) -> None:
    for made in _make(tmp_path, listen="0.0.0.0:9441"):
        client = made.client()
        page = client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()


def test_session_roles_are_enforced(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-soc") == 303
    assert client.get("/").status_code == 403
    assert client.get("/metrics").status_code == 200


def test_post_needs_the_session_csrf_token(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-operator") == 303
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    cookie = session_csrf(client)
    signer = setup.app.state.auth.signer
    session = signer.loads(cookie, setup.now[0])
    assert session is not None
    answer = client.post("/logout", headers={"X-CSRF-Token": session.csrf})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/").status_code == 401


def test_login_form_needs_its_csrf_token(setup: Setup) -> None:
    client = setup.client()
    client.get("/login")
    answer = client.post("/login", data={"username": "u-admin", "password": PASSWORD})
    assert answer.status_code == 403
    assert "cg_session" not in client.cookies


def test_wrong_password_is_refused(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-admin", "not the password at all") == 401
    assert login(client, "nobody", PASSWORD) == 401
    assert client.get("/metrics").status_code == 401


def test_login_is_rate_limited_per_username_and_per_address(setup: Setup) -> None:
    client = setup.client()
    for _ in range(5):
        assert login(client, "u-admin", "wrong password here") == 401
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    answer = client.post(
        "/login", data={"username": "u-admin", "password": PASSWORD, "csrf": csrf.group(1)}
    )
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert "Too many failed logins" in answer.text
    for i in range(15):  # other names from the same address
        assert login(client, f"guess{i}", "wrong password here") == 401
    assert login(client, "u-operator") == 429  # the address is blocked now
    setup.now[0] += 16 * 60 * 10**9
    assert login(client, "u-admin") == 303


def test_expired_assessor_is_refused(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-assessor") == 303
    assert client.get("/metrics").status_code == 403  # logged in, but not a metrics role
    setup.now[0] = T0 + HOUR
    assert client.get("/metrics").status_code == 401
    client.cookies.clear()
    assert login(client, "u-assessor") == 401


def test_disabled_user_loses_its_session(setup: Setup) -> None:
    client = setup.client()
    assert login(client, "u-soc") == 303
    assert client.get("/metrics").status_code == 200
    setup.store.disable_user("u-soc", T0 + 1)
    assert client.get("/metrics").status_code == 401


def test_logout_ends_the_session_for_every_copy_of_its_cookie(setup: Setup) -> None:
    from collector.web.auth.sessions import SESSION_COOKIE

    client = setup.client()
    assert login(client, "u-soc") == 303
    copied = client.cookies[SESSION_COOKIE]
    page = client.get("/metrics")
    assert page.status_code == 200
    csrf = setup.app.state.auth.signer.loads(copied, setup.now[0]).csrf
    assert client.post("/logout", headers={"x-csrf-token": csrf}).status_code == 303
    # Another browser holding the same cookie (a copy, a stolen one) is refused from now on.
    other = setup.client()
    other.cookies.set(SESSION_COOKIE, copied)
    assert other.get("/metrics").status_code == 401
    # A new login works, and ended sessions are forgotten once they would have expired.
    assert login(other, "u-soc") == 303
    assert other.get("/metrics").status_code == 200
    setup.now[0] += 10 * 24 * HOUR
    setup.store.end_session("0" * 64, setup.now[0] + HOUR, setup.now[0])
    with setup.store._sql_read("test") as sql:
        assert sql.one("SELECT COUNT(*) FROM ended_sessions") == (1,)


def test_metrics_accepts_basic_auth_with_a_token_as_password(setup: Setup) -> None:
    client = setup.client()
    answer = client.get("/metrics")
    assert answer.status_code == 401
    assert "Basic" in answer.headers["www-authenticate"]
    creds = base64.b64encode(f"prometheus:{setup.tokens['soc']}".encode()).decode()
    answer = client.get("/metrics", headers={"Authorization": f"Basic {creds}"})
    assert answer.status_code == 200
    assert "canhgac" in answer.text
    creds = base64.b64encode(f"prometheus:{setup.tokens['operator']}".encode()).decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {creds}"}).status_code == 403
    # Basic is accepted only where declared.
    creds = base64.b64encode(f"x:{setup.tokens['admin']}".encode()).decode()
    assert client.get("/", headers={"Authorization": f"Basic {creds}"}).status_code == 401


def test_revoked_and_expired_tokens_are_refused(setup: Setup) -> None:
    client = setup.client()
    token = setup.tokens["admin"]
    assert client.get("/metrics", headers=bearer(token)).status_code == 200
    setup.store.revoke_api_token(token.split("_")[1], T0 + 1)
    assert client.get("/metrics", headers=bearer(token)).status_code == 401
    setup.now[0] = T0 + 25 * HOUR
    assert client.get("/metrics", headers=bearer(setup.tokens["soc"])).status_code == 401


def test_principal_is_exposed_with_its_scope(setup: Setup) -> None:
    @requires("soc", "admin")
    async def scope(request: Request) -> Response:
        principal: Principal = request.state.principal
        return JSONResponse(
            {"name": principal.name, "role": principal.role, "systems": sorted(principal.systems)}
        )

    app = Starlette(routes=[Route("/scope", scope)])
    app.state.auth = setup.app.state.auth
    text, record = new_api_token("soc", T0, HOUR, systems=("portal", "dvc"))
    setup.store.create_api_token(record)
    answer = TestClient(app).get("/scope", headers=bearer(text))
    assert answer.json() == {
        "name": f"token:{record.token_id}",
        "role": "soc",
        "systems": ["dvc", "portal"],
    }


def test_open_redirects_are_refused(setup: Setup) -> None:
    client = setup.client()
    page = client.get("/login?next=//evil.example/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    assert "evil" not in page.text
    answer = client.post(
        "/login",
        data={
            "username": "u-admin",
            "password": PASSWORD,
            "csrf": csrf.group(1),
            "next": "https://evil.example/",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_metrics_show_a_soc_only_its_contracted_systems(setup: Setup) -> None:
    alerts = setup.app.state.metrics.alerts
    for system in ("portal", "treasury", "unassigned"):
        alerts.labels(rule_id="r-ssh", severity="high", system=system).inc()
    text, record = new_api_token("soc", T0, 24 * HOUR, systems=("portal",))
    setup.store.create_api_token(record)
    client = setup.client()

    def systems_seen(token: str) -> set[str]:
        page = client.get("/metrics", headers=bearer(token))
        assert page.status_code == 200
        # The collector's own health is the same for every reader.
        assert "canhgac_collector_agent_streams " in page.text
        assert "# TYPE canhgac_collector_alerts_total counter" in page.text
        return set(re.findall(r'canhgac_collector_alerts_total\{[^}]*system="([^"]*)"', page.text))

    assert systems_seen(setup.tokens["admin"]) == {"portal", "treasury", "unassigned"}
    assert systems_seen(text) == {"portal"}
    # A soc token with no contracted system sees no system's samples, never every system's.
    assert systems_seen(setup.tokens["soc"]) == set()
    # A soc user's session is scoped the same way (u-soc is contracted for "portal").
    assert login(client, "u-soc") == 303
    page = client.get("/metrics")
    assert set(re.findall(r'system="([^"]*)"', page.text)) == {"portal"}
