"""WebSocket messages of protocol v1 (docs/protocol.md): what clients send and what they get.

Client messages are parsed with ClientMessage; the server builds its messages as plain dicts
(a snapshot's JSON is made once per change, in the hub) and tests/test_schema.py checks them
against ServerMessage.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt

from transcriber.protocol.errors import ErrorBody
from transcriber.protocol.snapshot import TASK_ID_PATTERN, Snapshot
from transcriber.protocol.stages import Stage

PROTOCOL = 1
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, strict=True)]


class Subscribe(BaseModel):
    """Watch a task: answered at once with its latest snapshot, whatever last_seq says."""

    type: Literal["subscribe"]
    task_id: TaskId
    last_seq: StrictInt | None = Field(
        default=None, description="The seq the client already shows."
    )
    last_segment: StrictInt | None = Field(
        default=None,
        ge=-1,
        description="The index of the last segment the client already has (-1: none). With it,"
        " the subscription also carries the text: the segments after it at once, then each new"
        " one as it is decoded. Without it, snapshots only.",
    )


class Unsubscribe(BaseModel):
    type: Literal["unsubscribe"]
    task_id: TaskId


class Ping(BaseModel):
    type: Literal["ping"]


class ClientMessage(
    RootModel[Annotated[Subscribe | Unsubscribe | Ping, Field(discriminator="type")]]
):
    """Any message a client may send; unknown keys are ignored."""


_EXACT = ConfigDict(extra="forbid")


class Hello(BaseModel):
    model_config = _EXACT

    type: Literal["hello"]
    protocol: Literal[1]
    heartbeat_s: float = Field(gt=0, description="Seconds between heartbeat messages.")


class TaskMessage(BaseModel):
    model_config = _EXACT

    type: Literal["task"]
    task: Snapshot


class Heartbeat(BaseModel):
    model_config = _EXACT

    type: Literal["heartbeat"]
    ts: float = Field(description="The server's clock, Unix seconds.")


class Pong(BaseModel):
    model_config = _EXACT

    type: Literal["pong"]


class ErrorMessage(BaseModel):
    """A bad message or an unknown task; the connection stays open."""

    model_config = _EXACT

    type: Literal["error"]
    error: ErrorBody


class Deleted(BaseModel):
    """The task was deleted: no more messages come for it and its subscription has ended."""

    model_config = _EXACT

    type: Literal["deleted"]
    task_id: TaskId


class LiveWord(BaseModel):
    model_config = _EXACT

    word: str
    start: float
    end: float
    probability: float | None = None


class LiveSegment(BaseModel):
    """A segment of text: provisional while the task transcribes (no speaker), final once the
    task is complete (speakers, aligned words)."""

    model_config = _EXACT

    index: int = Field(ge=0, description="Its place in the transcript, from 0.")
    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[LiveWord] = Field(default_factory=list)
    final: bool = Field(description="False while the run may still change it.")


class SegmentsMessage(BaseModel):
    """New provisional segments of a task that transcribes. A resumed run may send an index
    again: the newer segment replaces the one the client has."""

    model_config = _EXACT

    type: Literal["segments"]
    task_id: TaskId
    seq: int = Field(ge=1, description="The task's seq when they were stored.")
    segments: list[LiveSegment]


class SegmentsPage(BaseModel):
    """GET /api/tasks/{id}/segments: the segments after the client's last one."""

    model_config = _EXACT

    task_id: TaskId
    stage: Stage = Field(description="The task's stage: a cancelled or failed run's text stays.")
    seq: int = Field(ge=1)
    final: bool = Field(description="True once complete: the final segments, with speakers.")
    segments_count: int = Field(ge=0)
    segments: list[LiveSegment]


class SegmentsFinal(BaseModel):
    """The final, speaker-labelled transcript exists: replace the provisional segments with it
    (GET .../segments or .../transcript)."""

    model_config = _EXACT

    type: Literal["segments_final"]
    task_id: TaskId
    seq: int = Field(ge=1)
    count: int = Field(ge=0, description="Segments in the final transcript.")


class ServerMessage(
    RootModel[
        Annotated[
            Hello
            | TaskMessage
            | Heartbeat
            | Pong
            | ErrorMessage
            | Deleted
            | SegmentsMessage
            | SegmentsFinal,
            Field(discriminator="type"),
        ]
    ]
):
    """Any message the server sends."""
