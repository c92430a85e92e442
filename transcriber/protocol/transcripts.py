"""A transcript as the API serves it after the run: a revision (the json format, speakers by
name), what an edit changed, and a page of search hits across every transcript.

The server builds these answers as plain dicts (a long transcript is not copied into models
on every read); tests/test_schema.py checks that what it sends is exactly these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_EXACT = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)
# A segment and its words carry what the engine that made them gave (a real model adds
# fields the plumbing pipeline does not): the fields below are those every engine gives.
_OPEN = ConfigDict(extra="allow")


class Word(BaseModel):
    model_config = _OPEN

    word: str
    start: float
    end: float
    probability: float | None = None
    speaker: str | None = Field(default=None, description="By name, once named.")
    estimated: bool = Field(
        default=False, description="Timing spread over its neighbours after a text edit."
    )


class Segment(BaseModel):
    model_config = _OPEN

    id: int
    start: float
    end: float
    text: str
    speaker: str | None = Field(default=None, description="By name, once named; else its label.")
    speaker_label: str | None = Field(default=None, description="The label diarization gave.")
    words: list[Word] = []
    edited: bool = Field(default=False, description="Its text was corrected by hand.")
    words_timing: Literal["kept", "mixed", "spread"] | None = Field(
        default=None, description="After a text edit: how many words kept their timing."
    )


class SpeakerProfile(BaseModel):
    """A speaker the server recognised: the profile it was matched to, and how closely."""

    model_config = _EXACT

    profile_id: str
    similarity: float = Field(description="Cosine of the speaker's voice and the profile's.")


class TranscriptRevision(BaseModel):
    """The json format of a revision: revision 0 is the model's output, each edit the next."""

    model_config = _EXACT

    language: str | None
    duration: float = Field(ge=0)
    model: str
    speakers: list[str] = Field(description="In order of first appearance, by name.")
    timings: dict[str, float] = Field(description="Seconds each stage of the run took.")
    segments: list[Segment]
    revision: int = Field(ge=0)
    source: Literal["model", "edit", "rediarize"]
    speaker_names: dict[str, str] = Field(description="Label -> the name given to it.")
    speaker_profiles: dict[str, SpeakerProfile] = Field(
        default={}, description="Label -> the voice profile it was recognised as."
    )


class ChangedSegment(Segment):
    index: int = Field(ge=0, description="Its place in the transcript's segments.")


class RevisionChange(BaseModel):
    """What an edit changed, the answer to `Prefer: return=minimal`: the new revision's
    number, its speaker names, and the segment the edit replaced (none for a rename: apply
    the names to each segment's speaker_label). Its size does not grow with the transcript."""

    model_config = _EXACT

    revision: int = Field(ge=1)
    source: Literal["edit"]
    speaker_names: dict[str, str] = Field(description="Label -> the name given to it: all.")
    segments: list[ChangedSegment] = Field(
        description="The segment edited, speakers by name as in the revision."
    )


class HitLinks(BaseModel):
    model_config = _EXACT

    task: str = Field(description="The task's snapshot.")


class SearchHit(BaseModel):
    """One matching segment."""

    model_config = _EXACT

    task_id: str
    filename: str
    segment: int = Field(ge=0, description="The segment's index in the transcript.")
    start: float
    end: float
    speaker: str | None
    snippet: str = Field(description="HTML-escaped; the matches in <mark>.")
    links: HitLinks


class SearchPage(BaseModel):
    """A page of hits, newest task first."""

    model_config = _EXACT

    query: str
    hits: list[SearchHit]
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    next_offset: int | None = Field(description="The offset of the next page; null on the last.")
