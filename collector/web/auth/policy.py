"""Who may call which route: declarations, the route registry, and the check itself.

Every endpoint declares its access with `@requires(*roles)` or `@public`; `route_registry`
lists every route of an app with its access and refuses a route that declared nothing, so a
new page cannot be left open by omission. The wrapper `requires` installs authenticates the
request (a bearer API token, optionally HTTP basic with a token as password, or a session
cookie), answers 401 (with WWW-Authenticate) or a redirect to /login for a browser without a
session, 403 for a role not allowed or a state-changing request without its session's CSRF
token, and otherwise sets `request.state.principal`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector.storage.worker import StoreWorker
from collector.web.auth.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Clock,
    SessionSigner,
    session_hash,
)
from collector.web.auth.tokens import parse_api_token, secret_matches
from collector.web.auth.users import ApiToken, AuthError, Role, User

Endpoint = Callable[[Request], Awaitable[Response]]
_ACCESS_ATTR = "__canhgac_access__"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SCOPED_ROLES: frozenset[Role] = frozenset({"soc", "assessor"})


@dataclass(frozen=True)
class Access:
    """A route's declared access: public, or the roles allowed and how to authenticate."""

    roles: frozenset[Role]
    public: bool = False
    # A browser without a session is sent to /login instead of a bare 401.
    login_redirect: bool = False
    # HTTP basic auth with an API token as the password (for Prometheus scrapers).
    basic: bool = False


@dataclass(frozen=True)
class Principal:
    """Who is calling. `systems` is the contracted scope of a soc or assessor principal:
    routes filter what they show with `scope` / `can_see_system`."""

    name: str
    role: Role
    via: Literal["session", "token"]
    systems: frozenset[str] = frozenset()
    csrf: str = ""

    def scope(self) -> frozenset[str] | None:
        """The systems this principal may see; None for every system (operator, admin).

        A soc (layer 2) and an assessor (layer 3) see only their contracted systems; an empty
        scope sees nothing, never everything. The empty system id (a host mapped to no system)
        is never in a scope, even when a stored scope lists it.
        """
        return self.systems - {""} if self.role in _SCOPED_ROLES else None

    def can_see_system(self, system_id: str) -> bool:
        scope = self.scope()
        return scope is None or (bool(system_id) and system_id in scope)


def user_usable(user: User, now_ns: int) -> bool:
    """Active, and (for a time-boxed account such as an assessor's) not past valid_until."""
    if user.disabled_ns:
        return False
    return not (user.valid_until_ns and now_ns >= user.valid_until_ns)


def token_usable(token: ApiToken, now_ns: int) -> bool:
    return not token.revoked_ns and now_ns < token.expires_ns


class WebAuth:
    """Authenticates requests against the store; shared by every route of one app."""

    def __init__(
        self, store: StoreWorker, signer: SessionSigner, *, secure_cookies: bool, clock: Clock
    ) -> None:
        self.store = store
        self.signer = signer
        self.secure_cookies = secure_cookies
        self.clock = clock

    async def authenticate(self, request: Request, access: Access) -> Principal | None:
        header = request.headers.get("authorization")
        if header is not None:
            return await self._from_header(header, access)
        cookie = request.cookies.get(SESSION_COOKIE)
        return None if cookie is None else await self._from_session(cookie)

    async def _from_header(self, header: str, access: Access) -> Principal | None:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return await self._from_token(value)
        if scheme == "basic" and access.basic:
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return await self._from_token(decoded.partition(":")[2])
        return None

    async def _from_token(self, text: str) -> Principal | None:
        parsed = parse_api_token(text)
        if parsed is None:
            return None
        token_id, secret = parsed
        token = await self.store.run(self.store.store.get_api_token, token_id)
        if token is None or not secret_matches(token, secret):
            return None
        if not token_usable(token, self.clock()):
            return None
        return Principal(f"token:{token.token_id}", token.role, "token", frozenset(token.systems))

    async def _from_session(self, cookie: str) -> Principal | None:
        session = self.signer.loads(cookie, self.clock())
        if session is None:
            return None
        store = self.store.store

        def lookup() -> User | None:
            return (
                None
                if store.session_ended(session_hash(session))
                else store.get_user(session.username)
            )

        user = await self.store.run(lookup)
        if user is None or not user_usable(user, self.clock()):
            return None
        return Principal(user.username, user.role, "session", frozenset(user.systems), session.csrf)


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body as single values (the last of repeated keys)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def _csrf_ok(request: Request, principal: Principal) -> bool:
    if request.method in _SAFE_METHODS or principal.via == "token":
        return True  # a bearer token is never sent by a browser on its own
    sent = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get(CSRF_FIELD, "")
    return bool(sent) and hmac.compare_digest(sent, principal.csrf)


def _unauthenticated(request: Request, access: Access) -> Response:
    browser = "text/html" in request.headers.get("accept", "")
    if access.login_redirect and browser and "authorization" not in request.headers:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/login?next={target}", status_code=303)
    challenge = 'Bearer realm="canhgac"'
    if access.basic:
        challenge += ', Basic realm="canhgac"'
    return PlainTextResponse(
        "authentication required", status_code=401, headers={"WWW-Authenticate": challenge}
    )


def requires(
    *roles: Role, login_redirect: bool = False, basic: bool = False
) -> Callable[[Endpoint], Endpoint]:
    """Declare and enforce the roles allowed to call an endpoint."""
    if not roles:
        raise AuthError("a protected route must allow at least one role")
    access = Access(frozenset(roles), login_redirect=login_redirect, basic=basic)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            auth: WebAuth = request.app.state.auth
            principal = await auth.authenticate(request, access)
            if principal is None:
                return _unauthenticated(request, access)
            if principal.role not in access.roles:
                return PlainTextResponse("forbidden for this role", status_code=403)
            if not await _csrf_ok(request, principal):
                return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            request.state.principal = principal
            return await endpoint(request)

        setattr(guarded, _ACCESS_ATTR, access)
        return guarded

    return decorate


def public(endpoint: Endpoint) -> Endpoint:
    """Declare an endpoint open to everyone (health checks, the login page)."""
    setattr(endpoint, _ACCESS_ATTR, Access(frozenset(), public=True))
    return endpoint


def access_of(endpoint: object) -> Access | None:
    found = getattr(endpoint, _ACCESS_ATTR, None)
    return found if isinstance(found, Access) else None


@dataclass(frozen=True)
class RouteAccess:
    path: str
    methods: frozenset[str]
    access: Access


def route_registry(routes: Iterable[BaseRoute]) -> list[RouteAccess]:
    """Every route with its declared access; AuthError for a route that declared none."""
    found: list[RouteAccess] = []
    undeclared: list[str] = []
    for route in routes:
        access = access_of(route.endpoint) if isinstance(route, Route) else None
        if not isinstance(route, Route) or access is None:
            undeclared.append(getattr(route, "path", repr(route)))
            continue
        found.append(RouteAccess(route.path, frozenset(route.methods or ()), access))
    if undeclared:
        raise AuthError(
            "routes without a declared access (@requires or @public): " + ", ".join(undeclared)
        )
    return found
