"""The OpenAPI paths of the internal node routes (web/nodes.py), merged by web/openapi.py."""

from __future__ import annotations

from typing import Any

_ERR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
_PARAMS = [
    {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "stage", "in": "path", "required": True, "schema": {"type": "string"}},
]
_NOTE = "Internal, for `transcriber node --audio http`: takes the node token as a bearer token."


def _op(summary: str, ok: dict[str, Any], errors: tuple[str, ...], **extra: Any) -> Any:
    responses = {"200": ok} | {code: _ERR for code in errors}
    return {"summary": summary, "description": _NOTE, "responses": responses, **extra}


NODE_PATHS: dict[str, Any] = {
    "/internal/nodes/tasks/{task_id}/audio": {
        "get": _op(
            "A task's stored audio, for a node (Range requests answered with 206)",
            {"description": "The audio", "content": {"application/octet-stream": {}}},
            ("401", "404", "409"),
            parameters=_PARAMS[:1],
        )
    },
    "/internal/nodes/tasks/{task_id}/stages/{stage}": {
        "get": _op(
            "A finished stage's output, for a node resuming the task",
            {"description": "The stage's output", "content": {"application/json": {}}},
            ("401", "404"),
            parameters=_PARAMS,
        ),
        "put": _op(
            "A node sends a stage's output as the stage ends (only the running attempt)",
            {"description": "Saved", "content": {"application/json": {}}},
            ("400", "401", "404", "409", "413"),
            parameters=[
                *_PARAMS,
                {"name": "attempt", "in": "query", "required": True, "schema": {"type": "integer"}},
            ],
            requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
        ),
    },
}
