"""The page's sign-in: POST /api/session takes the token or a key and answers with an HttpOnly
session cookie holding a digest of it (web/auth.py checks it on each request)."""

from __future__ import annotations

from aiohttp import web

from transcriber.jobs.access import session_value
from transcriber.protocol.errors import ApiError
from transcriber.protocol.server import SessionState
from transcriber.web.auth import COOKIE, credential_holder, required
from transcriber.web.keys import PERSON
from transcriber.web.parsing import json_body
from transcriber.web.security import same_origin


def _state(request: web.Request, signed_in: bool) -> web.Response:
    holder = request.get(PERSON) if signed_in or not required(request) else None
    state = SessionState(
        token_required=required(request),
        signed_in=signed_in,
        name=holder.name if holder else None,
        admin=holder.admin if holder else False,
    )
    return web.json_response(state.model_dump())


async def session_state(request: web.Request) -> web.Response:
    """Whether a credential is needed, and whether this browser's cookie is good (and whose)."""
    return _state(request, required(request) and PERSON in request)


async def sign_in(request: web.Request) -> web.Response:
    if not same_origin(request) and "Origin" in request.headers:
        raise ApiError("FORBIDDEN", "Sign in from the server's own page.")
    body = await json_body(request)
    given = body.get("token") if isinstance(body, dict) else None
    if not isinstance(given, str):
        raise ApiError("BAD_REQUEST", "The JSON body needs a token.")
    if not required(request):
        return _state(request, False)
    holder = await credential_holder(request, given.strip())
    if holder is None:
        raise ApiError("UNAUTHORIZED", "That token is not right.", "neither the token nor a key")
    request[PERSON] = holder
    response = _state(request, True)
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
    response.set_cookie(
        COOKIE,
        session_value(given.strip()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    response = _state(request, False)
    response.del_cookie(COOKIE, path="/")
    return response
