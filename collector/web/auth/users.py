"""Who may use the HTTP side: users, API tokens and the four roles.

operator (layer 1) works the console; soc (layer 2) reads, limited to its contracted systems;
assessor (layer 3) reads until its `valid_until`; admin does everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from canhgac.errors import CanhGacError

Role = Literal["operator", "soc", "assessor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AuthError(CanhGacError):
    """A user or token that cannot be created, found or used as asked."""


def check_role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise AuthError(f"role must be one of {', '.join(ROLES)}", location=text)


def check_username(text: str) -> str:
    if not USERNAME_RE.match(text):
        raise AuthError(
            "a user name is 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            location=text,
        )
    return text


@dataclass(frozen=True)
class User:
    """A person who logs in. `systems` scopes a soc user; `valid_until_ns` (0 = none) ends an
    assessor's access; `disabled_ns` (0 = active) is when the account was disabled."""

    username: str
    role: Role
    created_ns: int
    display_name: str = ""
    systems: tuple[str, ...] = ()
    valid_until_ns: int = 0
    disabled_ns: int = 0
    # The argon2id hash: never shown, never logged (kept out of repr).
    password_hash: str = field(default="", repr=False)


@dataclass(frozen=True)
class ApiToken:
    """A bearer token for machines (Prometheus, scripts). Only the secret's hash is kept."""

    token_id: str
    secret_hash: str = field(repr=False)
    role: Role
    created_ns: int
    expires_ns: int
    systems: tuple[str, ...] = ()
    label: str = ""
    revoked_ns: int = 0
