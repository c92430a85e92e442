"""What the server says about itself and its plumbing: its health, a browser's sign-in state,
and a node's saved stage output."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_EXACT = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class PublicHealth(BaseModel):
    """GET /api/health without the token, when the server has one: enough for a monitor."""

    model_config = _EXACT

    status: Literal["ok"] = "ok"
    version: str


class Workers(BaseModel):
    model_config = _EXACT

    busy: int = Field(ge=0, description="Jobs running now.")
    total: int = Field(ge=1, description="Jobs the server runs at once.")


class Health(PublicHealth):
    """GET /api/health with the token (or from anyone, when the server has none)."""

    device: str
    model: str = Field(description="The server's Whisper model.")
    pipeline: str
    diarization: str
    workers: Workers
    queue: int = Field(ge=0, description="Tasks waiting for a worker.")
    retention_days: float | None = Field(
        description="Finished tasks untouched this long are deleted; null: kept."
    )


class SessionState(BaseModel):
    """Whether the server needs a token or key, whether this browser's session cookie is good,
    and whom it signs in as."""

    model_config = _EXACT

    token_required: bool = Field(description="The server has a token or keys per person.")
    signed_in: bool
    name: str | None = Field(
        description="The owner name tasks made now get: the key's name, or 'admin' (the token,"
        " or a server without credentials); null when not signed in."
    )
    admin: bool = Field(description="Sees every task, whatever --visibility says.")


class SignIn(BaseModel):
    """The body of POST /api/session."""

    token: str = Field(description="The server's token or a key (`transcriber keys add`).")


class StageSaved(BaseModel):
    """A node's stage output, stored for the running attempt."""

    model_config = _EXACT

    saved: str = Field(description="The stage.")
    bytes: int = Field(ge=0)
