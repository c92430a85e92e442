"""Optional token: a bearer header for programs, an HttpOnly session cookie for the page.

The token never travels in a URL (URLs end up in logs, history and Referer headers). The
page signs in once (POST /api/session) and the server answers with a cookie holding a
digest of the token, so changing the token signs every browser out. A change made with the
cookie must come from the page's own origin: a cookie is sent on cross-site requests too.
Whatever the token, a change a browser marks as cross-site is refused (web/security.py).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from transcriber.protocol.errors import ApiError
from transcriber.protocol.server import SessionState
from transcriber.web.keys import CONFIG
from transcriber.web.middleware import Handler
from transcriber.web.parsing import bearer, json_body, same_secret
from transcriber.web.security import check_host, check_site, same_origin

COOKIE = "transcriber_session"
OPEN_PATHS = frozenset({"/api/health", "/api/session"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"transcriber session v1", hashlib.sha256).hexdigest()


def _credential(request: web.Request, token: str) -> str | None:
    """How the request shows the token: "bearer", "cookie" (the page's session), or None."""
    given = bearer(request)
    if given is not None:
        return "bearer" if same_secret(given, token) else None
    cookie = request.cookies.get(COOKIE)
    return "cookie" if cookie is not None and same_secret(cookie, session_value(token)) else None


def authorized(request: web.Request) -> bool:
    """Whether the request holds the token, or the server has none (for open routes that say
    more to those who do, like /api/health)."""
    token = request.app[CONFIG].token
    return not token or _credential(request, token) is not None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Host check and the cross-site check (web/security.py), then the token."""
    check_host(request)
    if request.method not in SAFE_METHODS:
        check_site(request)
    token = request.app[CONFIG].token
    protected = request.path.startswith(("/api/", "/v1/")) and request.path not in OPEN_PATHS
    if not token or not protected:
        return await handler(request)
    credential = _credential(request, token)
    if credential is None:
        if bearer(request) is not None:
            raise ApiError("UNAUTHORIZED", detail="the bearer token is not the server's")
        raise ApiError("UNAUTHORIZED", detail="send 'Authorization: Bearer <token>' or sign in")
    if credential == "cookie" and request.method not in SAFE_METHODS and not same_origin(request):
        raise ApiError("FORBIDDEN", "This request did not come from the server's own page.")
    return await handler(request)


async def session_state(request: web.Request) -> web.Response:
    """Whether a token is needed, and whether this browser's cookie is good."""
    token = request.app[CONFIG].token
    cookie = request.cookies.get(COOKIE, "")
    signed_in = bool(token) and same_secret(cookie, session_value(token or ""))
    return _state(bool(token), signed_in)


def _state(token_required: bool, signed_in: bool) -> web.Response:
    state = SessionState(token_required=token_required, signed_in=signed_in)
    return web.json_response(state.model_dump())


async def sign_in(request: web.Request) -> web.Response:
    token = request.app[CONFIG].token
    if not same_origin(request) and "Origin" in request.headers:
        raise ApiError("FORBIDDEN", "Sign in from the server's own page.")
    body = await json_body(request)
    given = body.get("token") if isinstance(body, dict) else None
    if not isinstance(given, str):
        raise ApiError("BAD_REQUEST", "The JSON body needs a token.")
    if not token:
        return _state(False, False)
    if not same_secret(given, token):
        raise ApiError("UNAUTHORIZED", "That token is not right.")
    response = _state(True, True)
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
    response.set_cookie(
        COOKIE,
        session_value(token),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    response = _state(bool(request.app[CONFIG].token), False)
    response.del_cookie(COOKIE, path="/")
    return response
