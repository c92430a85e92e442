"""OpenAI's audio API as this server speaks it (POST /v1/audio/transcriptions, GET /v1/models):
the form it takes, and the shapes OpenAI's clients read back."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
# The formats a streamed transcription (stream=true) may ask for: its events carry text alone.
STREAM_FORMATS = ("json", "text")
ErrorKind = Literal["invalid_request_error", "server_error"]
# The model OpenAI's clients name by default; here it means the server's own model.
DEFAULT_MODEL = "whisper-1"


class TranscriptionForm(BaseModel):
    """The multipart form of POST /v1/audio/transcriptions: the fields this server reads."""

    file: bytes
    model: str = Field(
        default=DEFAULT_MODEL,
        description=f"{DEFAULT_MODEL} (the server's --model) or a model GET /v1/models lists",
    )
    language: str = Field(default="", description="Language code; empty detects it.")
    prompt: str = Field(default="", description="Context for Whisper: names, spellings.")
    response_format: ResponseFormat = "json"
    stream: bool = Field(
        default=False,
        description="true: answer with Server-Sent Events, a transcript.text.delta per segment"
        " as it is decoded, then transcript.text.done (response_format json or text).",
    )
    temperature: float = Field(default=0.0, ge=0, le=1)
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        default=[], alias="timestamp_granularities[]"
    )


class Transcription(BaseModel):
    """The JSON answer: text alone (json), with segments (verbose_json, diarized_json)."""

    model_config = ConfigDict(extra="allow")

    text: str


class OpenAIErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    message: str
    type: ErrorKind
    param: str | None = None
    code: str

    @classmethod
    def of(cls, status: int, message: str, code: str, param: str | None = None) -> OpenAIErrorBody:
        """The body of an error answered with this HTTP status (or that ends a stream)."""
        kind: ErrorKind = "invalid_request_error" if status < 500 else "server_error"
        return cls(message=message, type=kind, param=param, code=code)


class OpenAIError(BaseModel):
    """An error as OpenAI's clients read it."""

    model_config = ConfigDict(extra="forbid")

    error: OpenAIErrorBody


class TranscriptTextDelta(BaseModel):
    """A streamed transcription's next text: a segment as it is decoded (the first has no
    leading space, the others one, so the deltas joined are the whole provisional text)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptTextDone(BaseModel):
    """A streamed transcription's last event: the final transcript's text."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


class StreamError(BaseModel):
    """A streamed transcription whose task ended without a transcript (failed, cancelled,
    deleted): the last event. OpenAI's clients raise it (openai.APIError)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["error"] = "error"
    error: OpenAIErrorBody


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "transcriber"


class ModelList(BaseModel):
    """The models clients may choose, in OpenAI's list shape."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    object: Literal["list"] = "list"
    data: list[ModelCard]
