"""The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json.

tests/test_openapi.py keeps it true: every route is described, every answer matches it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from transcriber import __version__
from transcriber.protocol.errors import CODES
from transcriber.protocol.options import DEFAULT_OPTIONS
from transcriber.protocol.stages import Stage
from transcriber.worker.pipeline.formats import FORMATS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = _json(_ref("Error"), "Error")
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"], "minimum": 1, "maximum": 32}

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "language": NULLABLE_STR,
        "model": NULLABLE_STR,
        "task": {"enum": ["transcribe", "translate"]},
        "diarize": {"type": "boolean"},
        "word_timestamps": {"type": "boolean"},
        "num_speakers": NULLABLE_INT,
        "min_speakers": NULLABLE_INT,
        "max_speakers": NULLABLE_INT,
        "initial_prompt": NULLABLE_STR,
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "detail"],
                "properties": {
                    "code": {"enum": sorted(CODES)},
                    "message": {"type": "string"},
                    "detail": {"type": "string"},
                    "task_id": {"type": "string"},
                },
            }
        },
    },
    "Options": OPTIONS_SCHEMA,
    "Task": {
        "type": "object",
        "required": [
            "id",
            "seq",
            "attempt",
            "stage",
            "progress",
            "stage_progress",
            "detail",
            "filename",
            "duration",
            "options",
            "created_at",
            "updated_at",
            "error",
            "links",
        ],
        "properties": {
            "id": {"type": "string"},
            "seq": {"type": "integer", "minimum": 1},
            "attempt": {"type": "integer", "minimum": 0},
            "stage": {"enum": [s.value for s in Stage]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "stage_progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "detail": {"type": "string"},
            "filename": {"type": "string"},
            "size": {"type": "integer"},
            "duration": {"type": ["number", "null"]},
            "language": NULLABLE_STR,
            "options": OPTIONS_SCHEMA,
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "error": {"type": ["object", "null"]},
            "links": {"type": "object"},
        },
    },
    "TaskList": {
        "type": "object",
        "required": ["tasks", "total", "limit", "offset"],
        "properties": {
            "tasks": {"type": "array", "items": _ref("Task")},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
}

_TASK = _json(_ref("Task"), "The task snapshot")
_UPLOAD_ERRORS = {"400": ERR, "413": ERR, "415": ERR, "422": ERR}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses} | extra


def _task_op(summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    extra.setdefault("parameters", [TASK_ID])
    return _op(summary, {"200": ok, "404": ERR, "409": ERR}, **extra)


_OPTION_FIELDS = {k: {"type": "string"} for k in DEFAULT_OPTIONS}
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
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["filename"],
                "properties": {
                    "filename": {"type": "string"},
                    "size": {"type": "integer"},
                    "options": OPTIONS_SCHEMA,
                },
            }
        },
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
]
_TEXT = {
    "description": "File",
    "content": {t: {"schema": {"type": "string"}} for t in FORMATS.values()},
}

PATHS: dict[str, Any] = {
    "/api/health": {"get": _op("Server health", {"200": _json({"type": "object"}, "Health")})},
    "/api/tasks": {
        "get": _op(
            "List tasks, newest first",
            {"200": _json(_ref("TaskList"), "Page"), "400": ERR},
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
                {"name": "format", "in": "query", "schema": {"enum": list(FORMATS)}},
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
        "model": {"type": "string"},
        "language": {"type": "string"},
        "prompt": {"type": "string"},
        "response_format": {
            "enum": ["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
        },
        "temperature": {"type": "number"},
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


def build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "transcriber", "version": __version__},
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }


async def document(request: web.Request) -> web.Response:
    return web.json_response(build())
