"""Voice profiles as the API shows them, and the export file that carries their embeddings."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from transcriber.protocol.transcripts import SpeakerProfile

DIMENSION = 192
EXPORT_FORMAT = "transcriber-voice-profiles"
MAX_PROFILE_NAME = 100
MAX_SAMPLES = 100
MAX_IMPORT = 10_000

_EXACT = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class SampleInfo(BaseModel):
    """Where one sample of a profile came from."""

    model_config = _EXACT

    task_id: str = Field(description="The task it was taken from (it may be deleted since).")
    speaker: str = Field(description="The speaker's label in that task.")
    seconds: float = Field(ge=0, description="Seconds of speech its embedding rests on.")
    created_at: str


class ProfileInfo(BaseModel):
    """A voice profile: a person's name and the samples of their voice (no embeddings)."""

    model_config = _EXACT

    id: str
    name: str
    seconds: float = Field(ge=0, description="Seconds of speech over all its samples.")
    samples: list[SampleInfo]
    created_at: str
    updated_at: str


class ProfileList(BaseModel):
    model_config = _EXACT

    profiles: list[ProfileInfo] = Field(description="By name.")
    enabled: bool = Field(
        default=True,
        description="False on a server started with --no-profiles: nothing is matched and no"
        " profile can be made (listing, rename, delete and export still work).",
    )


class Unmatched(BaseModel):
    """A speaker back to its own label: the task's names and recognised speakers now."""

    model_config = _EXACT

    speaker: str
    speaker_names: dict[str, str]
    speaker_profiles: dict[str, SpeakerProfile]


# Exported embeddings are unit length; the bounds keep any value a float32 can hold.
Embedding = Annotated[
    list[Annotated[float, Field(allow_inf_nan=False, ge=-1000.0, le=1000.0)]],
    Field(min_length=DIMENSION, max_length=DIMENSION),
]
# About four months: more speech than any recording the server takes.
MAX_SECONDS = 1e7


class ExportedSample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding: Embedding = Field(description=f"{DIMENSION} numbers: the CAM++ voice embedding.")
    seconds: float = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    task_id: str = Field(default="", max_length=200)
    speaker: str = Field(default="", max_length=200)
    created_at: str = Field(default="", max_length=40)

    @field_validator("embedding")
    @classmethod
    def _not_zero(cls, embedding: list[float]) -> list[float]:
        if not any(embedding):
            raise ValueError("an embedding of zeros is no voice")
        return embedding


class ExportedProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_PROFILE_NAME)
    samples: list[ExportedSample] = Field(min_length=1, max_length=MAX_SAMPLES)


class ProfileExport(BaseModel):
    """Every profile with its embeddings: the one place they leave the server. Import takes
    the same document (all or nothing)."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(default=EXPORT_FORMAT, pattern=f"^{EXPORT_FORMAT}$")
    version: int = Field(default=1, ge=1, le=1)
    model: str = Field(default="campplus", pattern="^campplus$", description="The embedding.")
    dimension: int = Field(default=DIMENSION, ge=DIMENSION, le=DIMENSION)
    profiles: list[ExportedProfile] = Field(max_length=MAX_IMPORT)
