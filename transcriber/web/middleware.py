"""The middleware that answers every failed request in the one error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from transcriber.protocol.errors import ApiError, reference
from transcriber.web.security import secure

log = logging.getLogger(__name__)


def error_response(exc: ApiError) -> web.Response:
    return web.json_response({"error": exc.body}, status=exc.status, headers=exc.headers)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "FILE_TOO_LARGE",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in the one error shape, and the security headers (web/security.py) on
    every answer this returns: set here rather than in an on_response_prepare hook, which
    costs a signal dispatch on every request (bench_rps). The two handlers that send their
    answer themselves (the WebSocket, the OpenAI event stream) set them before they do."""
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            secure(request, exc.headers)
            raise
        code = _HTTP_CODES.get(exc.status, "INTERNAL" if exc.status >= 500 else "BAD_REQUEST")
        response = error_response(ApiError(code, detail=exc.text or exc.reason))
    except HttpProcessingError as exc:
        # A malformed body part (e.g. a bad multipart header) is the client's error.
        response = error_response(
            ApiError("BAD_REQUEST", detail=f"{type(exc).__name__}: {exc.message}")
        )
    except Exception:
        ref = reference()
        log.exception("unhandled error in %s %s [ref %s]", request.method, request.path, ref)
        response = error_response(
            ApiError("INTERNAL", detail=f"reference {ref} in the server's log")
        )
    if not response.prepared:
        secure(request, response.headers)
    return response
