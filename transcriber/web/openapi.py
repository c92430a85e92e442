"""The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json.

tests/test_openapi.py keeps it true: every route is described, every answer matches it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from transcriber import __version__
from transcriber.formats import FORMATS
from transcriber.protocol.errors import ErrorResponse
from transcriber.protocol.messages import ClientMessage, ServerMessage
from transcriber.protocol.options import Options
from transcriber.protocol.snapshot import NewTask, Snapshot, TaskList
from transcriber.web.openapi_edits import EDIT_PATHS
from transcriber.web.openapi_nodes import NODE_PATHS

_REF = "#/components/schemas/{model}"
# The components, generated from the protocol's models: responses in serialization mode,
# request bodies in validation mode. The WebSocket messages are listed too, for clients.
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (ErrorResponse, "serialization"),
    (Snapshot, "serialization"),
    (TaskList, "serialization"),
    (NewTask, "validation"),
    (Options, "validation"),
    (ClientMessage, "validation"),
    (ServerMessage, "serialization"),
]


@cache
def schemas() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=_REF)
    defs: dict[str, Any] = top["$defs"]
    return defs


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = _json(_ref(ErrorResponse), "Error")
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}

_TASK = _json(_ref(Snapshot), "The task snapshot")
_UPLOAD_ERRORS = {"400": ERR, "413": ERR, "415": ERR, "422": ERR, "429": ERR, "507": ERR}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses} | extra


def _task_op(summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    extra.setdefault("parameters", [TASK_ID])
    return _op(summary, {"200": ok, "404": ERR, "409": ERR}, **extra)


# Form fields and query parameters are text; the Options model reads them from strings.
_OPTION_FIELDS = {
    name: {"type": "string", "description": field.description or name}
    for name, field in Options.model_fields.items()
}
_CREATE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}} | _OPTION_FIELDS,
            }
        },
        "application/json": {"schema": _ref(NewTask)},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
_WAIT = [
    {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 3600}},
    {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 2**62}},
]
_PAGE = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
    },
    {
        "name": "before",
        "in": "query",
        "description": "The `next` cursor of the previous page.",
        "schema": {"type": "string"},
    },
]
_TEXT = {
    "description": "File",
    "content": {
        f.media_type: {"schema": {"type": "string"} | ({"format": "binary"} if f.binary else {})}
        for f in FORMATS.values()
    },
}

PATHS: dict[str, Any] = {
    "/api/health": {"get": _op("Server health", {"200": _json({"type": "object"}, "Health")})},
    "/api/tasks": {
        "get": _op(
            "List tasks, newest first",
            {"200": _json(_ref(TaskList), "Page"), "400": ERR},
            parameters=_PAGE,
        ),
        "post": _op(
            "Create a task (multipart, raw body, or JSON for the two-step upload)",
            {"201": _TASK} | _UPLOAD_ERRORS,
            requestBody=_CREATE_BODY,
        ),
    },
    "/api/tasks/{task_id}": {
        "get": _op(
            "Task snapshot; ETag, long-poll",
            {"200": _TASK, "304": {"description": "Not modified"}, "400": ERR, "404": ERR},
            parameters=[TASK_ID, *_WAIT],
        ),
        "delete": _op(
            "Delete a task and its files",
            {"204": {"description": "Deleted"}, "404": ERR},
            parameters=[TASK_ID],
        ),
    },
    "/api/tasks/{task_id}/audio": {
        "put": _op(
            "Upload the audio of a task created with JSON",
            {"201": _TASK, "404": ERR, "409": ERR} | _UPLOAD_ERRORS,
            parameters=[TASK_ID],
            requestBody={
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
        ),
        "get": _task_op("The original audio (Range supported)", {"description": "Audio"}),
    },
    "/api/tasks/{task_id}/cancel": {"post": _task_op("Cancel a task", _TASK)},
    "/api/tasks/{task_id}/retry": {"post": _task_op("Retry a failed or cancelled task", _TASK)},
    "/api/tasks/{task_id}/transcript": {
        "get": _task_op(
            "Transcript of a complete task",
            _TEXT,
            parameters=[
                TASK_ID,
                {"name": "format", "in": "query", "schema": {"enum": [*FORMATS]}},
                {"name": "revision", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
        )
    },
    "/api/tasks/{task_id}/diarization.rttm": {
        "get": _task_op(
            "Speaker turns as RTTM",
            {"description": "RTTM", "content": {"text/plain": {"schema": {"type": "string"}}}},
        )
    },
}
PATHS["/api/tasks/{task_id}/transcript"]["get"]["responses"]["400"] = ERR
PATHS |= EDIT_PATHS
PATHS |= NODE_PATHS

_OPENAI_ERR = _json(
    {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"]}},
    },
    "OpenAI-style error",
)
_OPENAI_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "model": {
            "type": "string",
            "description": "whisper-1 (the server's --model) or a model GET /v1/models lists",
        },
        "language": {"type": "string"},
        "prompt": {"type": "string"},
        "response_format": {
            "enum": ["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "timestamp_granularities[]": {"type": "array", "items": {"enum": ["word", "segment"]}},
    },
}
PATHS["/v1/audio/transcriptions"] = {
    "post": _op(
        "OpenAI-compatible transcription; answers when the task ends",
        {
            "200": {
                "description": "Transcript",
                "content": {
                    "application/json": {"schema": {"type": "object", "required": ["text"]}},
                    "text/plain": {"schema": {"type": "string"}},
                    "text/vtt": {"schema": {"type": "string"}},
                },
            }
        }
        | {code: _OPENAI_ERR for code in ("400", "409", "413", "415", "422", "500", "503", "507")},
        requestBody={
            "required": True,
            "content": {"multipart/form-data": {"schema": _OPENAI_FORM}},
        },
    )
}
_SESSION = _json(
    {
        "type": "object",
        "required": ["token_required"],
        "properties": {"token_required": {"type": "boolean"}, "signed_in": {"type": "boolean"}},
    },
    "Whether a token is needed and whether this browser is signed in",
)
PATHS["/api/session"] = {
    "get": _op("Sign-in state of this browser", {"200": _SESSION}),
    "post": _op(
        "Sign in with the token: sets an HttpOnly session cookie",
        {"200": _SESSION, "400": ERR, "401": ERR, "403": ERR},
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["token"],
                        "properties": {"token": {"type": "string"}},
                    }
                }
            },
        },
    ),
    "delete": _op("Sign out: clears the session cookie", {"200": _SESSION}),
}
PATHS["/v1/models"] = {
    "get": _op(
        "The models clients may choose, in OpenAI's list shape",
        {
            "200": _json(
                {
                    "type": "object",
                    "required": ["object", "data"],
                    "properties": {
                        "object": {"const": "list"},
                        "data": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "object"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "object": {"const": "model"},
                                    "created": {"type": "integer"},
                                    "owned_by": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Models",
            )
        },
    )
}


def build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "transcriber", "version": __version__},
        "paths": PATHS,
        "components": {"schemas": schemas()},
    }


async def document(request: web.Request) -> web.Response:
    return web.json_response(build())
