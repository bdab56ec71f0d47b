"""AuthStore contract, on every backend (PostgreSQL must run under CI=true)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from collector.storage.base import Store
from collector.web.auth.tokens import new_api_token, parse_api_token, secret_matches
from collector.web.auth.users import ApiToken, AuthError, User

T0 = 1_700_000_000 * 10**9
DAY = 86400 * 10**9


def user(name: str, **kw: Any) -> User:
    return replace(User(name, "operator", T0, password_hash="$h$"), **kw)


@pytest.fixture
def auth_store(store: Store) -> Store:
    store.migrate()
    return store


def test_users_are_added_read_listed_and_disabled(auth_store: Store) -> None:
    soc = user("lan", role="soc", systems=("portal", "dvc"), display_name="Nguyễn Thị Lan")
    assessor = user("minh", role="assessor", valid_until_ns=T0 + DAY)
    auth_store.add_user(soc)
    auth_store.add_user(assessor)
    assert auth_store.get_user("lan") == soc
    assert auth_store.get_user("minh") == assessor
    assert auth_store.get_user("nobody") is None
    assert [u.username for u in auth_store.list_users()] == ["lan", "minh"]
    assert auth_store.disable_user("lan", T0 + 5)
    assert not auth_store.disable_user("lan", T0 + 6)  # already disabled
    assert not auth_store.disable_user("nobody", T0)
    disabled = auth_store.get_user("lan")
    assert disabled is not None
    assert disabled.disabled_ns == T0 + 5


def test_a_taken_user_name_is_refused(auth_store: Store) -> None:
    auth_store.add_user(user("lan"))
    with pytest.raises(AuthError):
        auth_store.add_user(user("lan", role="admin"))
    stored = auth_store.get_user("lan")
    assert stored is not None
    assert stored.role == "operator"


def test_password_hash_is_replaced(auth_store: Store) -> None:
    auth_store.add_user(user("lan"))
    assert auth_store.set_password_hash("lan", "$new$")
    assert not auth_store.set_password_hash("nobody", "$new$")
    stored = auth_store.get_user("lan")
    assert stored is not None
    assert stored.password_hash == "$new$"


def test_password_hash_is_not_in_repr() -> None:
    assert "$secret-hash$" not in repr(user("lan", password_hash="$secret-hash$"))


def test_api_tokens_are_stored_listed_and_revoked(auth_store: Store) -> None:
    text, record = new_api_token("soc", T0, DAY, systems=("portal",), label="prometheus")
    _, other = new_api_token("admin", T0 + 1, DAY)
    auth_store.create_api_token(record)
    auth_store.create_api_token(other)
    assert auth_store.get_api_token(record.token_id) == record
    assert auth_store.get_api_token("000000000000") is None
    assert [t.token_id for t in auth_store.list_api_tokens()] == [record.token_id, other.token_id]
    parsed = parse_api_token(text)
    assert parsed is not None
    assert parsed[0] == record.token_id
    assert secret_matches(record, parsed[1])
    assert secret_matches(record, parsed[1])
    assert not secret_matches(record, "x" * 43)
    assert parsed[1] not in record.secret_hash
    assert parsed[1] not in repr(record)
    assert auth_store.revoke_api_token(record.token_id, T0 + 10)
    assert not auth_store.revoke_api_token(record.token_id, T0 + 11)
    assert not auth_store.revoke_api_token("000000000000", T0)
    revoked = auth_store.get_api_token(record.token_id)
    assert revoked is not None
    assert revoked.revoked_ns == T0 + 10


def test_a_taken_token_id_is_refused(auth_store: Store) -> None:
    _, record = new_api_token("soc", T0, DAY)
    auth_store.create_api_token(record)
    with pytest.raises(AuthError):
        auth_store.create_api_token(ApiToken(record.token_id, "other", "admin", T0, T0 + DAY))


def test_ended_sessions_are_kept_until_they_would_have_expired(auth_store: Store) -> None:
    a, b = "a" * 64, "b" * 64
    assert not auth_store.session_ended(a)
    auth_store.end_session(a, expires_ns=2_000, now_ns=1_000)
    auth_store.end_session(a, expires_ns=2_000, now_ns=1_001)  # a second logout: no error
    assert auth_store.session_ended(a)
    assert not auth_store.session_ended(b)
    # Ending another session after a's expiry forgets a: its cookie has expired anyway.
    auth_store.end_session(b, expires_ns=9_000, now_ns=2_000)
    assert not auth_store.session_ended(a)
    assert auth_store.session_ended(b)
