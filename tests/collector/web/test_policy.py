from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from collector.web.app import is_loopback
from collector.web.auth.policy import (
    Principal,
    access_of,
    public,
    requires,
    route_registry,
    token_usable,
    user_usable,
)
from collector.web.auth.sessions import LoginRateLimiter, SessionSigner, load_or_create_key
from collector.web.auth.tokens import new_api_token
from collector.web.auth.users import AuthError, User, check_role

S = 10**9


async def page(request: Request) -> Response:
    return PlainTextResponse("ok")


def test_requires_declares_the_roles() -> None:
    access = access_of(requires("operator", "admin", login_redirect=True)(page))
    assert access is not None
    assert access.roles == {"operator", "admin"}
    assert access.login_redirect
    assert not access.public
    open_access = access_of(public(page))
    assert open_access is not None
    assert open_access.public


def test_requires_needs_a_role() -> None:
    with pytest.raises(AuthError):
        requires()


def test_registry_refuses_an_undeclared_route() -> None:
    async def naked(request: Request) -> Response:
        return PlainTextResponse("")

    with pytest.raises(AuthError, match="/naked"):
        route_registry([Route("/ok", requires("admin")(page)), Route("/naked", naked)])


def test_registry_lists_each_route_with_its_access() -> None:
    listed = route_registry([Route("/a", requires("soc")(page), methods=["POST"])])
    assert [(r.path, set(r.methods), set(r.access.roles)) for r in listed] == [
        ("/a", {"POST"}, {"soc"})
    ]


def test_role_names_are_checked() -> None:
    assert check_role("assessor") == "assessor"
    with pytest.raises(AuthError):
        check_role("root")


def test_soc_principal_sees_only_its_systems() -> None:
    soc = Principal("lan", "soc", "session", frozenset({"portal"}))
    assert soc.can_see_system("portal")
    assert not soc.can_see_system("dvc")
    assert Principal("an", "operator", "session").can_see_system("dvc")


def test_time_boxed_and_disabled_users_are_unusable() -> None:
    assessor = User("minh", "assessor", 0, valid_until_ns=100 * S)
    assert user_usable(assessor, 99 * S)
    assert not user_usable(assessor, 100 * S)
    assert not user_usable(User("an", "operator", 0, disabled_ns=5), 1)
    assert user_usable(User("an", "operator", 0), 10**18)


def test_expired_and_revoked_tokens_are_unusable() -> None:
    _, token = new_api_token("soc", 0, 10 * S)
    assert token_usable(token, 9 * S)
    assert not token_usable(token, 10 * S)
    _, other = new_api_token("soc", 0, 10 * S)
    assert not token_usable(type(other)(**{**other.__dict__, "revoked_ns": 1}), 1)


def test_session_cookie_round_trip_tamper_and_expiry() -> None:
    signer = SessionSigner(b"k" * 32)
    session = signer.new("an", 0, 10 * S)
    value = signer.dumps(session)
    assert signer.loads(value, 9 * S) == session
    assert signer.loads(value, 10 * S) is None
    body, _, mac = value.partition(".")
    assert signer.loads(body + "x." + mac, 0) is None
    assert SessionSigner(b"j" * 32).loads(value, 0) is None
    assert signer.loads("garbage", 0) is None
    assert "k" * 32 not in repr(signer)


def test_session_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "state")
    path = tmp_path / "state" / "web-session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32
    assert load_or_create_key(tmp_path / "state") == key


def test_rate_limiter_counts_per_username_and_per_address() -> None:
    now = [0]
    limiter = LoginRateLimiter(lambda: now[0], per_username=3, per_address=5, window_ns=60 * S)
    for _ in range(3):
        assert limiter.retry_after_s("an", "10.0.0.1") == 0
        limiter.failed("an", "10.0.0.1")
    assert limiter.retry_after_s("an", "10.0.0.2") == 60
    assert limiter.retry_after_s("binh", "10.0.0.1") == 0
    limiter.failed("binh", "10.0.0.1")
    limiter.failed("chi", "10.0.0.1")
    assert limiter.retry_after_s("dung", "10.0.0.1") > 0  # the address reached 5
    now[0] = 61 * S
    assert limiter.retry_after_s("an", "10.0.0.1") == 0
    limiter.failed("an", "10.0.0.9")
    limiter.succeeded("an")
    assert limiter.retry_after_s("an", "10.0.0.9") == 0


def test_loopback_listeners() -> None:
    assert is_loopback("127.0.0.1:9441")
    assert is_loopback("[::1]:9441")
    assert is_loopback("localhost:80")
    assert not is_loopback("0.0.0.0:9441")
    assert not is_loopback("10.1.2.3:9441")
