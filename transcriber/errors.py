"""The closed list of error codes, the API error shape, and the middleware that applies it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

# code -> (HTTP status when it answers a request, plain message for a person)
CODES: dict[str, tuple[int, str]] = {
    "BAD_REQUEST": (400, "The request is not valid."),
    "BAD_MESSAGE": (400, "The message could not be understood."),
    "UNSUPPORTED_MEDIA": (415, "This file is not audio or video that the server can read."),
    "NO_AUDIO_STREAM": (422, "This file has no audio track."),
    "DECODE_FAILED": (422, "The audio in this file could not be decoded; it may be damaged."),
    "FILE_TOO_LARGE": (413, "The file is larger than this server accepts."),
    "AUDIO_TOO_LONG": (422, "The recording is longer than this server accepts."),
    "UPLOAD_INCOMPLETE": (400, "The upload was cut off before the whole file arrived."),
    "MODEL_UNAVAILABLE": (503, "The speech model is not available on this server."),
    "OUT_OF_MEMORY": (507, "The server ran out of memory while working on this file."),
    "WORKER_CRASHED": (500, "The worker processing this file stopped unexpectedly."),
    "INTERRUPTED": (500, "The server was restarted too many times while working on this file."),
    "CANCELLED": (409, "The task was cancelled."),
    "UNKNOWN_TASK": (404, "There is no task with this id."),
    "NOT_FOUND": (404, "There is nothing at this address."),
    "METHOD_NOT_ALLOWED": (405, "This address does not accept that method."),
    "NOT_READY": (409, "The task is not in a state that allows this yet."),
    "CONFLICT": (409, "The task is not in a state that allows this."),
    "UNAUTHORIZED": (401, "A valid access token is required."),
    "FORBIDDEN": (403, "This origin may not connect."),
    "INTERNAL": (500, "Something went wrong inside the server."),
}


def error_body(code: str, message: str | None = None, detail: str = "") -> dict[str, Any]:
    return {"code": code, "message": message or CODES[code][1], "detail": detail}


class ApiError(Exception):
    """Raised by handlers; rendered by the middleware in the one error shape."""

    def __init__(
        self, code: str, message: str | None = None, detail: str = "", **extra: Any
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        super().__init__(message or CODES[code][1])
        self.code = code
        self.status = CODES[code][0]
        self.body = error_body(code, message, detail) | extra

    def response(self) -> web.Response:
        return web.json_response({"error": self.body}, status=self.status)


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
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "INTERNAL" if exc.status >= 500 else "BAD_REQUEST")
        return ApiError(code, detail=exc.text or exc.reason).response()
    except HttpProcessingError as exc:
        # A malformed body part (e.g. a bad multipart header) is the client's error.
        return ApiError("BAD_REQUEST", detail=f"{type(exc).__name__}: {exc.message}").response()
    except Exception as exc:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError("INTERNAL", detail=f"{type(exc).__name__}: {exc}").response()
