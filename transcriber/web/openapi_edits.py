"""The OpenAPI paths of work after the run (web/edits.py): names, corrections, re-diarization,
search. Merged into the document by web/openapi.py."""

from __future__ import annotations

from typing import Any

from transcriber.jobs.transcripts.search import MAX_LIMIT, MAX_OFFSET, MAX_QUERY
from transcriber.protocol.options import MAX_SPEAKERS

_REF = "#/components/schemas/{model}"
_ERR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}},
}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "description": "The ETag of the revision the edit applies to; 412 when it is not the latest.",
    "schema": {"type": "string"},
}
_REVISION = {
    "description": "The new revision (the json format, names applied); its ETag in the header",
    "headers": {"ETag": {"schema": {"type": "string"}}},
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["revision", "segments", "speakers", "speaker_names"],
                "properties": {
                    "revision": {"type": "integer"},
                    "source": {"enum": ["model", "edit", "rediarize"]},
                    "speakers": {"type": "array", "items": {"type": "string"}},
                    "speaker_names": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                    "segments": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
_EDIT_ERRORS = {"400": _ERR, "404": _ERR, "409": _ERR, "412": _ERR}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_NAMES = {
    "type": "object",
    "minProperties": 1,
    "description": 'Label -> name, e.g. {"SPEAKER_01": "Dana"}; null gives a label back.',
    "additionalProperties": {"type": ["string", "null"], "minLength": 1, "maxLength": 100},
}
_SEGMENT = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 10_000},
        "speaker": {"type": "string", "description": "A label, or a name already given"},
    },
}
_COUNT = {"type": "integer", "minimum": 1, "maximum": MAX_SPEAKERS}
_SPEAKER_COUNTS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"num_speakers": _COUNT, "min_speakers": _COUNT, "max_speakers": _COUNT},
}
_HIT = {
    "type": "object",
    "required": ["task_id", "filename", "segment", "start", "end", "speaker", "snippet"],
    "properties": {
        "task_id": {"type": "string"},
        "filename": {"type": "string"},
        "segment": {"type": "integer"},
        "start": {"type": "number"},
        "end": {"type": "number"},
        "speaker": {"type": ["string", "null"]},
        "snippet": {"type": "string", "description": "HTML-escaped; matches in <mark>"},
        "links": {"type": "object"},
    },
}
_HITS = {
    "type": "object",
    "required": ["query", "hits", "offset", "limit", "next_offset"],
    "properties": {
        "query": {"type": "string"},
        "hits": {"type": "array", "items": _HIT},
        "offset": {"type": "integer"},
        "limit": {"type": "integer"},
        "next_offset": {"type": ["integer", "null"]},
    },
}
_SEARCH_PARAMS = [
    {
        "name": "q",
        "in": "query",
        "required": True,
        "description": 'Words (all must match), "a phrase", or a prefix*',
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY},
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    },
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
    },
]
_SNAPSHOT = {
    "description": "The task, queued again",
    "content": {"application/json": {"schema": {"$ref": _REF.format(model="Snapshot")}}},
}

EDIT_PATHS: dict[str, Any] = {
    "/api/tasks/{task_id}/speakers": {
        "patch": {
            "summary": "Name speakers (a new revision)",
            "parameters": [_TASK_ID, _IF_MATCH],
            "requestBody": _body(_NAMES),
            "responses": {"200": _REVISION} | _EDIT_ERRORS,
        }
    },
    "/api/tasks/{task_id}/segments/{index}": {
        "patch": {
            "summary": "Correct a segment's text or speaker (a new revision)",
            "parameters": [
                _TASK_ID,
                {"name": "index", "in": "path", "required": True, "schema": {"type": "integer"}},
                _IF_MATCH,
            ],
            "requestBody": _body(_SEGMENT),
            "responses": {"200": _REVISION} | _EDIT_ERRORS,
        }
    },
    "/api/tasks/{task_id}/rediarize": {
        "post": {
            "summary": "Re-run diarization alone with new speaker counts",
            "parameters": [_TASK_ID],
            "requestBody": {"content": {"application/json": {"schema": _SPEAKER_COUNTS}}},
            "responses": {"202": _SNAPSHOT, "400": _ERR, "404": _ERR, "409": _ERR, "429": _ERR},
        }
    },
    "/api/search": {
        "get": {
            "summary": "Search every transcript, newest task first",
            "parameters": _SEARCH_PARAMS,
            "responses": {
                "200": {"description": "Hits", "content": {"application/json": {"schema": _HITS}}},
                "400": _ERR,
            },
        }
    },
}
