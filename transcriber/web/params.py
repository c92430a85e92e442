"""What the routes take besides audio: path parameters, query strings and JSON bodies, as
pydantic models (their answers are the protocol's models).

A Field's bounds are the one home of each limit: handlers read the query through its model
(web/parsing.py `query`), and web/openapi.py documents the same models. The edit bodies are
checked by jobs/transcripts/edits.py, whose limits their models show.
"""

from __future__ import annotations

from typing import Annotated, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from transcriber.formats import FORMATS
from transcriber.jobs.access import NAME_PATTERN
from transcriber.jobs.transcripts.edits import MAX_NAME, MAX_TEXT
from transcriber.protocol.options import MAX_SPEAKERS

# A long-poll asks for up to an hour and is answered within this many seconds at most.
MAX_WAIT = 60
# SQLite's integers have 64 bits: a larger number would fail the query (500), not answer 400.
MAX_STORED = 2**62
# The `next` of a page of tasks: the created_at and row of its last task (a rowid has at most
# 18 digits here: 19 could pass SQLite's 64-bit integers and fail the query with a 500).
CURSOR = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)_(\d{1,18})$"


class PathParams(BaseModel):
    """Every path parameter of the route table, by its name there."""

    task_id: str = Field(description="The task's id.")
    index: int = Field(ge=0, description="The segment's index in the transcript.")
    stage: str = Field(description="A stage whose output a worker saves (e.g. transcribing).")
    speaker: str = Field(description="A speaker's label in the JSON transcript: SPEAKER_00.")
    profile_id: str = Field(description="The voice profile's id.")


class TaskPage(BaseModel):
    limit: int = Field(default=50, ge=1, le=200, description="Tasks per page.")
    owner: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Only this owner's tasks: `me` (the caller), a key's name, admin or watch.",
    )
    offset: int = Field(default=0, ge=0, le=10**9, description="Tasks to skip.")
    before: str | None = Field(
        default=None, pattern=CURSOR, description="The `next` cursor of the previous page."
    )

    @field_validator("before", mode="wrap")
    @classmethod
    def _cursor(cls, value: object, check: ValidatorFunctionWrapHandler) -> str | None:
        try:
            return cast(str | None, check(value))
        except ValidationError:
            raise PydanticCustomError(
                "bad_query",
                "before must be the 'next' of a previous page.",
                {"detail": str(value)[:100]},
            ) from None


class LongPoll(BaseModel):
    wait: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description=f"Seconds to wait for a change past `since` (at most {MAX_WAIT} are waited).",
    )
    since: int | None = Field(
        default=None, ge=0, le=MAX_STORED, description="The seq the client shows; else the current."
    )


class SegmentsQuery(BaseModel):
    after: int = Field(
        default=-1,
        ge=-1,
        le=MAX_STORED,
        description="The index of the last segment the client has; -1 or absent: from the first.",
    )
    wait: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description=f"Seconds to wait for a segment after `after` (at most {MAX_WAIT} are"
        " waited) while the task runs; else it answers at once.",
    )


class RevisionQuery(BaseModel):
    revision: int | None = Field(
        default=None, ge=0, le=MAX_STORED, description="A revision; else the latest."
    )


class TranscriptQuery(RevisionQuery):
    format: str = Field(default="json", json_schema_extra={"enum": [*FORMATS]})
    download: str | None = Field(
        default=None, description="Present: an attachment named after the upload."
    )

    @field_validator("format")
    @classmethod
    def _known(cls, fmt: str) -> str:
        if fmt not in FORMATS:
            raise PydanticCustomError(
                "bad_query",
                "Unknown format {fmt}.",
                {"fmt": repr(fmt), "detail": f"formats: {', '.join(FORMATS)}"},
            )
        return fmt


class SearchQuery(BaseModel):
    q: str = Field(
        min_length=1,
        max_length=500,
        description='Words (all must match), "a phrase", or a prefix*.',
    )
    limit: int = Field(default=20, ge=0, le=100, description="Hits per page (0 is taken as 1).")
    # Paging deeper than this walks FTS5's matches that far for every page: refine the query.
    offset: int = Field(default=0, ge=0, le=1_000_000)


class AttemptQuery(BaseModel):
    attempt: int = Field(ge=0, description="The node's attempt: only the running one may write.")


class SpeakerNames(
    RootModel[
        Annotated[
            dict[str, Annotated[str, Field(min_length=1, max_length=MAX_NAME)] | None],
            Field(min_length=1),
        ]
    ]
):
    """Label -> name, e.g. {"SPEAKER_01": "Dana"}; null gives a label back its own name."""


class SegmentEdit(BaseModel):
    """A segment's new text, its speaker, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | SkipJsonSchema[None] = None
    speaker: str | SkipJsonSchema[None] = Field(
        default=None, description="A label, or a name already given."
    )


_Count = Annotated[int, Field(ge=1, le=MAX_SPEAKERS)] | SkipJsonSchema[None]


class SpeakerCounts(BaseModel):
    """Re-diarization's speaker counts; those left out are unset."""

    model_config = ConfigDict(extra="forbid")

    num_speakers: _Count = None
    min_speakers: _Count = None
    max_speakers: _Count = None


class NewProfile(BaseModel):
    """A profile from a complete task's speaker; the name defaults to the speaker's name."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=200)
    speaker: str = Field(min_length=1, max_length=200, description="Its label: SPEAKER_00.")
    name: str | SkipJsonSchema[None] = Field(
        default=None, description="At most 100 characters, no control characters; unique."
    )


class NewSample(BaseModel):
    """One more sample of a profile's voice: a complete task's speaker."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=200)
    speaker: str = Field(min_length=1, max_length=200, description="Its label: SPEAKER_00.")


class ProfileName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="At most 100 characters, no control characters; unique.")
