"""The closed list of error codes and the one error shape, for HTTP, WebSocket and tasks."""

from __future__ import annotations

import re
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from transcriber.protocol.stages import Stage

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
    "PRECONDITION_FAILED": (412, "This was changed elsewhere since you loaded it; reload it."),
    "UNAUTHORIZED": (401, "A valid access token is required."),
    "FORBIDDEN": (403, "This origin may not connect."),
    "INTERNAL": (500, "Something went wrong inside the server."),
    "JOB_TIMEOUT": (504, "The job took too long and was stopped."),
    "QUEUE_FULL": (429, "The server has too many files waiting; try again later."),
    "DISK_FULL": (507, "The server is out of disk space."),
    "TOO_MANY_UPLOADS": (429, "The server is receiving too many uploads at once; try again later."),
    "CALLBACK_NOT_ALLOWED": (400, "This server does not send webhooks to that address."),
    "UNKNOWN_PROFILE": (404, "There is no voice profile with this id."),
    "UNKNOWN_SPEAKER": (404, "This task has no speaker with this label."),
    "NO_VOICES": (409, "This task has no speaker voices: it ran without diarization."),
    "TOO_LITTLE_SPEECH": (422, "This speaker says too little for the voice to be recognised."),
    "NAME_TAKEN": (409, "Another voice profile already has this name."),
    "PROFILES_OFF": (403, "Known voices are turned off on this server."),
}


class ErrorBody(BaseModel):
    """The one error shape: HTTP answers, WebSocket errors and failed tasks."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(json_schema_extra={"enum": [code for code in sorted(CODES)]})
    message: str = Field(description="Plain words for a person.")
    detail: str = Field(description="Technical detail: what failed and how.")
    task_id: str | None = Field(default=None, description="The task concerned, where there is one.")
    stage: Stage | None = Field(default=None, description="A failed task's stage when it failed.")

    @field_validator("code")
    @classmethod
    def _known(cls, code: str) -> str:
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        return code


class ErrorResponse(BaseModel):
    """Every HTTP error answer: {"error": {...}}."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


# An absolute path with at least one folder, cut to its last part: /srv/data/ab/x.wav -> x.wav.
# Roots: /, C:\ or C:/, \\server\. In quotes (how Python shows a path in an OSError) the path
# is everything up to the closing quote, spaces included; in plain text nothing tells where
# a name with spaces ends, so folders may hold single spaces (/srv/my data/x.wav) but the
# last part may not. The look-behind spares URLs (http://a/b) and media types (text/plain).
_ROOT = r"(?:/|[A-Za-z]:[\\/]|\\\\)"
_NAME = r"[\w.\-~+@]"
_QUOTED = re.compile(rf"""(['"]){_ROOT}[^'"\n]*[\\/]([^'"\n\\/]*)\1""")
_PATH = re.compile(rf"(?<![\w.:/\\]){_ROOT}(?:{_NAME}+(?: {_NAME}+)*[\\/])+({_NAME}*)")


def scrub(text: str) -> str:
    """Text for a client: server paths cut down to their last part."""
    text = _QUOTED.sub(lambda m: m.group(1) + (m.group(2) or "…") + m.group(1), text)
    return _PATH.sub(lambda m: m.group(1) or "…", text)


def reference() -> str:
    """A short reference for an internal error: in the client's error and in the log line."""
    return secrets.token_hex(4)


def error_body(code: str, message: str | None = None, detail: str = "") -> dict[str, Any]:
    body = ErrorBody(code=code, message=scrub(message or CODES[code][1]), detail=scrub(detail))
    return body.model_dump(exclude_none=True)


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
        # HTTP headers for the answer (Retry-After with QUEUE_FULL).
        self.headers: dict[str, str] = {}
