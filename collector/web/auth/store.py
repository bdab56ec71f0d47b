"""AuthStore: users and API tokens, in SQL written once for both backends.

`AuthStore` is the contract (Store extends it); `AuthStoreMixin` implements it for a backend
that provides `_sql_read` and `_sql_write` (see collector/storage/enrollment_sql.py). System
scopes are kept as a JSON array. Users are disabled, never deleted, so logs keep naming them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from collector.storage.enrollment_sql import Sql
from collector.web.auth.users import ApiToken, AuthError, User, check_role

# Rows are read and written in this column order.
_INSERT_USER = (
    "INSERT INTO users (username, role, created_ns, display_name, systems, valid_until_ns, "
    "disabled_ns, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_USERS = (
    "SELECT username, role, created_ns, display_name, systems, valid_until_ns, disabled_ns, "
    "password_hash FROM users"
)
_INSERT_API_ROW = (
    "INSERT INTO api_tokens (token_id, secret_hash, role, created_ns, expires_ns, systems, "
    "label, revoked_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_TOKENS = (
    "SELECT token_id, secret_hash, role, created_ns, expires_ns, systems, label, revoked_ns "
    "FROM api_tokens"
)


class AuthStore(Protocol):
    """Console users and API tokens."""

    def add_user(self, user: User) -> None:
        """Store a new user; AuthError when the name is taken."""
        ...

    def get_user(self, username: str) -> User | None: ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def disable_user(self, username: str, now_ns: int) -> bool:
        """Disable an active user; False when unknown or already disabled."""
        ...

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        """Replace a user's password hash; False when unknown."""
        ...

    def create_api_token(self, token: ApiToken) -> None:
        """Store a new token; AuthError when the id is taken."""
        ...

    def get_api_token(self, token_id: str) -> ApiToken | None: ...

    def list_api_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""
        ...

    def revoke_api_token(self, token_id: str, now_ns: int) -> bool:
        """Revoke a token; False when unknown or already revoked."""
        ...

    def end_session(self, session_hash: str, expires_ns: int, now_ns: int) -> None:
        """Refuse a session from now on (logout); forgets sessions past their expiry."""
        ...

    def session_ended(self, session_hash: str) -> bool: ...


def _user(row: Sequence[Any]) -> User:
    name, role, created, display, systems, valid_until, disabled, pw = row
    return User(
        username=name,
        role=check_role(role),
        created_ns=int(created),
        display_name=display,
        systems=tuple(json.loads(systems)),
        valid_until_ns=int(valid_until),
        disabled_ns=int(disabled),
        password_hash=pw,
    )


def _token(row: Sequence[Any]) -> ApiToken:
    token_id, digest, role, created, expires, systems, label, revoked = row
    return ApiToken(
        token_id=token_id,
        secret_hash=digest,
        role=check_role(role),
        created_ns=int(created),
        expires_ns=int(expires),
        systems=tuple(json.loads(systems)),
        label=label,
        revoked_ns=int(revoked),
    )


class AuthStoreMixin:
    """AuthStore for a backend that provides `_sql_read` and `_sql_write`."""

    def _sql_read(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _sql_write(self, operation: str) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def add_user(self, user: User) -> None:
        with self._sql_write("add_user") as sql:
            if sql.one("SELECT 1 FROM users WHERE username = ?", (user.username,)):
                raise AuthError("a user of this name exists", location=user.username)
            sql(
                _INSERT_USER,
                (
                    user.username,
                    user.role,
                    user.created_ns,
                    user.display_name,
                    json.dumps(list(user.systems)),
                    user.valid_until_ns,
                    user.disabled_ns,
                    user.password_hash,
                ),
            )

    def get_user(self, username: str) -> User | None:
        with self._sql_read("get_user") as sql:
            row = sql.one(_SELECT_USERS + " WHERE username = ?", (username,))
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self._sql_read("list_users") as sql:
            rows = sql.all(_SELECT_USERS + " ORDER BY username")
        return [_user(row) for row in rows]

    def disable_user(self, username: str, now_ns: int) -> bool:
        with self._sql_write("disable_user") as sql:
            return bool(
                sql.changed(
                    "UPDATE users SET disabled_ns = ? WHERE username = ? AND disabled_ns = 0",
                    (now_ns, username),
                )
            )

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        with self._sql_write("set_password_hash") as sql:
            return bool(
                sql.changed(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )
            )

    def create_api_token(self, token: ApiToken) -> None:
        with self._sql_write("create_api_token") as sql:
            if sql.one("SELECT 1 FROM api_tokens WHERE token_id = ?", (token.token_id,)):
                raise AuthError("a token of this id exists", location=token.token_id)
            sql(
                _INSERT_API_ROW,
                (
                    token.token_id,
                    token.secret_hash,
                    token.role,
                    token.created_ns,
                    token.expires_ns,
                    json.dumps(list(token.systems)),
                    token.label,
                    token.revoked_ns,
                ),
            )

    def get_api_token(self, token_id: str) -> ApiToken | None:
        with self._sql_read("get_api_token") as sql:
            row = sql.one(_SELECT_TOKENS + " WHERE token_id = ?", (token_id,))
        return None if row is None else _token(row)

    def list_api_tokens(self) -> list[ApiToken]:
        with self._sql_read("list_api_tokens") as sql:
            rows = sql.all(_SELECT_TOKENS + " ORDER BY created_ns, token_id")
        return [_token(row) for row in rows]

    def revoke_api_token(self, token_id: str, now_ns: int) -> bool:
        with self._sql_write("revoke_api_token") as sql:
            return bool(
                sql.changed(
                    "UPDATE api_tokens SET revoked_ns = ? WHERE token_id = ? AND revoked_ns = 0",
                    (now_ns, token_id),
                )
            )

    def end_session(self, session_hash: str, expires_ns: int, now_ns: int) -> None:
        with self._sql_write("end_session") as sql:
            sql("DELETE FROM ended_sessions WHERE expires_ns <= ?", (now_ns,))
            if not sql.one("SELECT 1 FROM ended_sessions WHERE session_hash = ?", (session_hash,)):
                sql(
                    "INSERT INTO ended_sessions (session_hash, expires_ns) VALUES (?, ?)",
                    (session_hash, expires_ns),
                )

    def session_ended(self, session_hash: str) -> bool:
        with self._sql_read("session_ended") as sql:
            row = sql.one("SELECT 1 FROM ended_sessions WHERE session_hash = ?", (session_hash,))
        return row is not None
