"""What each route of web/routes.py takes and answers, by its route name. web/openapi.py walks
the app's router and builds the document's paths from this table and the models it names; a
named route without an entry here (or an entry without a route) fails the build.

JSON is described by models (web/params.py for what a route takes, protocol/ for what it
answers); other content (uploads, audio, downloads) by a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from transcriber.formats import FORMATS
from transcriber.protocol.errors import ErrorResponse
from transcriber.protocol.messages import SegmentsPage
from transcriber.protocol.openai import (
    ModelList,
    OpenAIError,
    StreamError,
    Transcription,
    TranscriptionForm,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from transcriber.protocol.options import Options
from transcriber.protocol.profiles import ProfileExport, ProfileInfo, ProfileList, Unmatched
from transcriber.protocol.server import Health, PublicHealth, SessionState, SignIn, StageSaved
from transcriber.protocol.snapshot import NewTask, Snapshot, TaskList
from transcriber.protocol.transcripts import RevisionChange, SearchPage, TranscriptRevision
from transcriber.web.params import (
    AttemptQuery,
    LongPoll,
    NewProfile,
    NewSample,
    ProfileName,
    RevisionQuery,
    SearchQuery,
    SegmentEdit,
    SegmentsQuery,
    SpeakerCounts,
    SpeakerNames,
    TaskPage,
    TranscriptQuery,
)

# A model (a component of the document), models any of which it may be, or a plain schema.
Schema = type[BaseModel] | tuple[type[BaseModel], ...] | dict[str, Any]
JSON = "application/json"
BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}


@dataclass(frozen=True)
class Answer:
    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)  # media type -> schema
    headers: Mapping[str, str] = field(default_factory=dict)  # header -> description


@dataclass(frozen=True)
class Route:
    summary: str
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()  # statuses answered with error_model
    query: type[BaseModel] | None = None
    body: Mapping[str, Schema] = field(default_factory=dict)  # media type -> schema
    body_required: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)  # request header -> description
    description: str = ""
    error_model: type[BaseModel] = ErrorResponse


def _json(model: Schema, description: str, **headers: str) -> Answer:
    return Answer(description, {JSON: model}, headers)


_TASK = _json(Snapshot, "The task's snapshot", ETag="Its seq, for If-None-Match")
_CREATED = _json(Snapshot, "The task", ETag="Its seq", Location="The task's address")
_UPLOAD_ERRORS = (400, 413, 415, 422, 429, 507)
# Form fields are text; the Options model reads each option from a string.
_UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": BINARY}
    | {
        name: {"type": "string", "description": info.description or name}
        for name, info in Options.model_fields.items()
    },
}
_AUDIO = {media: BINARY for media in ("audio/*", "video/*", "application/octet-stream")}
_PART = "The bytes a Range header asked for"


def _edit(summary: str, body: type[BaseModel]) -> Route:
    return Route(
        summary,
        {
            200: _json(
                (TranscriptRevision, RevisionChange),
                "The new revision; with Prefer: return=minimal, only what changed",
                **{
                    "ETag": "Its tag, for the next If-Match",
                    "Preference-Applied": "return=minimal when the answer is only what changed",
                    "Vary": "Prefer: the answer depends on it",
                },
            )
        },
        (400, 404, 409, 412),
        body={JSON: body},
        headers={
            "If-Match": "The ETag of the revision edited; 412 when it is not the latest.",
            "Prefer": "return=minimal (RFC 7240): answer with only what changed (RevisionChange),"
            " the same size however long the transcript; without it, the whole new revision.",
        },
    )


_NODE_AUDIO = {"application/octet-stream": BINARY}
_STAGE_OUTPUT = {"type": "object", "description": "The worker's output of the stage, as JSON."}
_NODE = "Internal, for `transcriber node --audio http`: takes the node token as a bearer token."

ROUTES: dict[str, Route] = {
    "health": Route(
        "Server health; its settings only for those who hold the token",
        {200: _json((Health, PublicHealth), "Health")},
    ),
    "session": Route("Sign-in state of this browser", {200: _json(SessionState, "State")}),
    "sign_in": Route(
        "Sign in with the token: sets an HttpOnly session cookie",
        {200: _json(SessionState, "Signed in")},
        (400, 401, 403),
        body={JSON: SignIn},
    ),
    "sign_out": Route("Sign out: clears the session cookie", {200: _json(SessionState, "Out")}),
    "ws": Route(
        "The WebSocket: live snapshots of the tasks a client subscribes to",
        {101: Answer("Switching protocols: ClientMessage in, ServerMessage out")},
        (400, 403),
        description="Protocol v1 (docs/protocol.md); the messages are in the components.",
    ),
    "tasks": Route(
        "List tasks, newest first", {200: _json(TaskList, "A page")}, (400,), query=TaskPage
    ),
    "create_task": Route(
        "Create a task (multipart, raw body, or JSON for the two-step upload)",
        {201: _CREATED},
        _UPLOAD_ERRORS,
        body={
            "multipart/form-data": _UPLOAD_FORM,
            JSON: NewTask,
            "application/octet-stream": BINARY,
        },
    ),
    "task": Route(
        "Task snapshot; ETag, long-poll",
        {200: _TASK, 304: Answer("Not modified since the If-None-Match")},
        (400, 404),
        query=LongPoll,
        headers={"If-None-Match": "An ETag it gave: 304 while the task is unchanged."},
    ),
    "delete_task": Route("Delete a task and its files", {204: Answer("Deleted")}, (404,)),
    "upload_audio": Route(
        "Upload the audio of a task created with JSON",
        {201: _CREATED},
        (404, 409, *_UPLOAD_ERRORS),
        body={"application/octet-stream": BINARY},
    ),
    "audio": Route(
        "The original audio, as the media type the probe found (Range answered with 206)",
        {200: Answer("The audio", _AUDIO), 206: Answer(_PART, _AUDIO)},
        (404, 409),
    ),
    "cancel_task": Route("Cancel a task", {200: _TASK}, (404, 409)),
    "retry_task": Route("Retry a failed or cancelled task", {200: _TASK}, (404, 409, 429)),
    "segments": Route(
        "The text so far, segment by segment: provisional while the task transcribes, final"
        " (speakers, aligned words) once it is complete",
        {200: _json(SegmentsPage, "The segments after `after`")},
        (400, 404),
        query=SegmentsQuery,
        description="With `wait`, a long-poll: it answers as soon as a segment after `after`"
        " is stored, or with none once the wait is over.",
    ),
    "transcript": Route(
        "Transcript of a complete task, in any format, speakers by their names",
        {
            200: Answer(
                "The file (format=json: the revision)",
                {f.media_type: BINARY if f.binary else TEXT for f in FORMATS.values()}
                | {JSON: TranscriptRevision},
                {"ETag": "The revision's tag"},
            )
        },
        (400, 404, 409),
        query=TranscriptQuery,
    ),
    "rttm": Route(
        "Speaker turns as RTTM",
        {200: Answer("RTTM", {"text/plain": TEXT})},
        (400, 404, 409),
        query=RevisionQuery,
    ),
    "speakers": _edit("Name speakers (a new revision)", SpeakerNames),
    "segment": _edit("Correct a segment's text or speaker (a new revision)", SegmentEdit),
    "rediarize": Route(
        "Re-run diarization alone with new speaker counts",
        {202: _json(Snapshot, "The task, queued again")},
        (400, 404, 409, 429),
        body={JSON: SpeakerCounts},
        body_required=False,
    ),
    "search": Route(
        "Search every transcript, newest task first",
        {200: _json(SearchPage, "Hits")},
        (400,),
        query=SearchQuery,
    ),
    "unmatch": Route(
        "Undo a recognised speaker: back to its label, never matched to that profile again"
        " in this task",
        {200: _json(Unmatched, "The task's names now")},
        (404, 409),
    ),
    "profiles": Route("Voice profiles, by name", {200: _json(ProfileList, "The profiles")}),
    "create_profile": Route(
        "Remember a complete task's speaker as a voice profile",
        {201: _json(ProfileInfo, "The profile", Location="The profile's address")},
        (400, 403, 404, 409, 422),
        body={JSON: NewProfile},
    ),
    "add_sample": Route(
        "Add a complete task's speaker as one more sample of a profile",
        {200: _json(ProfileInfo, "The profile")},
        (400, 403, 404, 409, 422),
        body={JSON: NewSample},
    ),
    "rename_profile": Route(
        "Rename a voice profile",
        {200: _json(ProfileInfo, "The profile")},
        (400, 403, 404, 409),
        body={JSON: ProfileName},
    ),
    "delete_profile": Route(
        "Delete a voice profile and every embedding of it", {204: Answer("Deleted")}, (404,)
    ),
    "export_profiles": Route(
        "Every profile with its voice embeddings, to import on another server",
        {200: _json(ProfileExport, "The export file")},
        description="The only answer that carries voice embeddings (docs/security.md).",
    ),
    "import_profiles": Route(
        "Import profiles from an export file: all of them or none",
        {201: _json(ProfileList, "The profiles made")},
        (400, 403, 409, 413),
        body={JSON: ProfileExport},
    ),
    "openai": Route(
        "OpenAI-compatible transcription; answers when the task ends, or streams the text",
        {
            200: Answer(
                "The transcript, in the response_format asked for; with stream=true, Server-Sent"
                " Events whose data is each one of the text/event-stream schemas: a delta per"
                " segment as it is decoded, then the final text (or an error)",
                {
                    JSON: Transcription,
                    "text/plain": TEXT,
                    "text/vtt": TEXT,
                    "text/event-stream": (TranscriptTextDelta, TranscriptTextDone, StreamError),
                },
            )
        },
        (400, 409, 413, 415, 422, 500, 503, 507),
        body={"multipart/form-data": TranscriptionForm},
        error_model=OpenAIError,
    ),
    "openai_models": Route(
        "The models clients may choose, in OpenAI's list shape", {200: _json(ModelList, "Models")}
    ),
    "node_audio": Route(
        "A task's stored audio, for a node (Range answered with 206)",
        {200: Answer("The audio", _NODE_AUDIO), 206: Answer(_PART, _NODE_AUDIO)},
        (401, 404, 409),
        description=_NODE,
    ),
    "node_stage": Route(
        "A finished stage's output, for a node resuming the task",
        {200: _json(_STAGE_OUTPUT, "The stage's output")},
        (401, 404),
        description=_NODE,
    ),
    "node_save_stage": Route(
        "A node sends a stage's output as the stage ends (only the running attempt)",
        {200: _json(StageSaved, "Saved")},
        (400, 401, 404, 409, 413),
        query=AttemptQuery,
        body={JSON: _STAGE_OUTPUT},
        description=_NODE,
    ),
}
