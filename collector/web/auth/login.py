"""/login and /logout: the session cookie's life.

The login form is protected by a double-submit CSRF token (a cookie and a hidden field that
must match), since there is no session yet; /logout, like every state-changing request of a
session, needs the session's own CSRF token. Failed logins are counted per user name and per
client address (LoginRateLimiter) and answered 429 past the limit.
"""

from __future__ import annotations

import hmac
import html
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.web.auth.passwords import verify_password
from collector.web.auth.policy import WebAuth, form_fields, public, requires, user_usable
from collector.web.auth.sessions import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginRateLimiter,
    session_hash,
)
from collector.web.auth.users import ROLES

LOGIN_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Canh Gác — Đăng nhập / Login</title></head>
<body><h1>Canh Gác</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<p><label>Tên đăng nhập / User name <input name="username" autocomplete="username"></label></p>
<p><label>Mật khẩu / Password <input name="password" type="password"
autocomplete="current-password"></label></p>
<p><button type="submit">Đăng nhập / Log in</button></p></form></body></html>"""


# The form needs nothing but itself: no script, no style, no frame around it (clickjacking).
_LOGIN_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _safe_next(target: str) -> str:
    """Only a local path: no scheme, no host, no `//` (an open redirect otherwise)."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/"


def _login_form(request: Request, error: str, status: int, next_path: str) -> Response:
    csrf = secrets.token_urlsafe(32)
    body = LOGIN_PAGE.format(
        error=f"<p role='alert'>{html.escape(error)}</p>" if error else "",
        csrf=csrf,
        next=html.escape(_safe_next(next_path)),
    )
    response = HTMLResponse(body, status_code=status, headers=_LOGIN_HEADERS)
    auth: WebAuth = request.app.state.auth
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/login",
        secure=auth.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@public
async def login_page(request: Request) -> Response:
    return _login_form(request, "", 200, request.query_params.get("next", "/"))


@public
async def login_submit(request: Request) -> Response:
    auth: WebAuth = request.app.state.auth
    limiter: LoginRateLimiter = request.app.state.login_limiter
    form = await form_fields(request)
    next_path = form.get("next", "/")
    sent, expected = form.get(CSRF_FIELD, ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not hmac.compare_digest(sent, expected):
        return _login_form(
            request, "Phiên biểu mẫu hết hạn / Form expired, try again", 403, next_path
        )
    username, password = form.get("username", "").strip(), form.get("password", "")
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after_s(username, address)
    if wait:
        response = _login_form(
            request,
            f"Quá nhiều lần đăng nhập sai / Too many failed logins: try again in {wait} s",
            429,
            next_path,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = await auth.store.run(auth.store.store.get_user, username) if username else None
    matches = await run_in_threadpool(verify_password, user.password_hash if user else "", password)
    if user is None or not matches or not user_usable(user, auth.clock()):
        limiter.failed(username, address)
        return _login_form(
            request,
            "Sai tên, mật khẩu, hoặc tài khoản bị khoá / Wrong name or password, or account "
            "disabled or expired",
            401,
            next_path,
        )
    limiter.succeeded(username)
    session = auth.signer.new(user.username, auth.clock())
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth.signer.dumps(session),
        max_age=max(1, (session.expires_ns - auth.clock()) // 10**9),
        path="/",
        secure=auth.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@requires(*ROLES)
async def logout(request: Request) -> Response:
    auth: WebAuth = request.app.state.auth
    # The cookie is deleted in this browser; the session itself is ended on the server too, so
    # a copy of the cookie (another browser, a stolen one) stops working at once.
    session = auth.signer.loads(request.cookies.get(SESSION_COOKIE, ""), auth.clock())
    if session is not None:
        await auth.store.run(
            auth.store.store.end_session, session_hash(session), session.expires_ns, auth.clock()
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=auth.secure_cookies, httponly=True, samesite="strict"
    )
    return response


def login_routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"], name="login_submit"),
        Route("/logout", logout, methods=["POST"]),
    ]
