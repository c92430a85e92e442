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

PROTOCOL = 1
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, strict=True)]


class Subscribe(BaseModel):
    """Watch a task: answered at once with its latest snapshot, whatever last_seq says."""

    type: Literal["subscribe"]
    task_id: TaskId
    last_seq: StrictInt | None = Field(
        default=None, description="The seq the client already shows."
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


class ServerMessage(
    RootModel[
        Annotated[
            Hello | TaskMessage | Heartbeat | Pong | ErrorMessage | Deleted,
            Field(discriminator="type"),
        ]
    ]
):
    """Any message the server sends."""
