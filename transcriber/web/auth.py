"""Optional bearer token: a header for HTTP, or ?token= / a cookie where browsers can't send one."""

from __future__ import annotations

import hmac

from aiohttp import web

from transcriber.protocol.errors import ApiError
from transcriber.web.keys import CONFIG
from transcriber.web.middleware import Handler

COOKIE = "transcriber_token"


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("token") or request.cookies.get(COOKIE)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[CONFIG].token
    protected = request.path.startswith(("/api/", "/v1/")) and request.path != "/api/health"
    if expected and protected:
        given = presented_token(request) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError("UNAUTHORIZED", detail="send 'Authorization: Bearer <token>'")
    return await handler(request)
