"""The task snapshot: the one JSON shape of a task, for HTTP and WebSocket alike.

store/task.py::task_json builds it as a plain dict (it is on the hot path of every progress
update); tests/test_schema.py checks that what it builds is exactly this model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from transcriber.protocol.errors import ErrorBody
from transcriber.protocol.options import Options
from transcriber.protocol.stages import Stage

TASK_ID_PATTERN = r"^[0-9a-f]{16}$"
_EXACT = ConfigDict(extra="forbid")


class Links(BaseModel):
    model_config = _EXACT

    self_: str = Field(alias="self", description="This snapshot.")
    transcript: str = Field(description="The transcript, once complete (?format=...).")
    audio: str = Field(description="The original audio, with Range support.")
    rttm: str = Field(description="Speaker turns as RTTM, once complete.")
    segments: str = Field(description="The text so far, segment by segment (?after=N&wait=S).")


class Webhook(BaseModel):
    """The delivery of a task's callback_url webhook once it ended (docs/security.md)."""

    model_config = _EXACT

    id: str = Field(description="The webhook-id header: the same on every attempt.")
    state: Literal["pending", "delivered", "failed"] = Field(
        description="pending: being tried; delivered: a 2xx answer came; failed: out of tries."
    )
    attempts: int = Field(ge=0, description="Attempts made so far.")
    last_status: int | None = Field(description="HTTP status of the last answer, if one came.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    last_try: str | None = Field(description="When the last attempt was made.")
    next_try: str | None = Field(description="When the next attempt is due, while pending.")


class Snapshot(BaseModel):
    """A task as its watchers see it; seq goes up by one with every change."""

    model_config = _EXACT

    id: str = Field(pattern=TASK_ID_PATTERN)
    seq: int = Field(ge=1)
    attempt: int = Field(ge=0, description="Runs of the pipeline so far.")
    stage: Stage
    progress: int = Field(ge=0, le=100, description="Overall whole percent.")
    stage_progress: int = Field(ge=0, le=100, description="Whole percent within the stage.")
    detail: str = Field(description="A short sub-line for a person.")
    filename: str
    owner: str = Field(
        description="Who made it: the name of the key it was made with; 'admin' with the"
        " server's token or on a server without one; 'watch' for a watched folder's file."
    )
    size: int = Field(ge=0, description="Bytes of the upload.")
    duration: float | None = Field(description="Seconds of audio, once known.")
    language: str | None = Field(description="The language spoken, once known.")
    options: Options
    created_at: str
    updated_at: str
    error: ErrorBody | None
    segments_count: int = Field(
        ge=0,
        description="Segments of text so far: the provisional ones while it transcribes, the"
        " final ones once complete (GET .../segments, the WebSocket's segments messages).",
    )
    webhook: Webhook | None = Field(
        description="Its callback_url webhook, once the task ended with one; else null."
    )
    links: Links


class TaskList(BaseModel):
    """A page of tasks, newest first."""

    model_config = _EXACT

    tasks: list[Snapshot]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    next: str | None = Field(
        description="The cursor of the following page (pass it as `before`); null on the last."
    )


class NewTask(BaseModel):
    """The JSON body of POST /api/tasks: the first step of the two-step upload."""

    filename: str
    owner: str = Field(
        description="Who made it: the name of the key it was made with; 'admin' with the"
        " server's token or on a server without one; 'watch' for a watched folder's file."
    )
    size: int | None = Field(default=None, ge=0, description="Bytes the PUT will send.")
    options: Options | None = None
