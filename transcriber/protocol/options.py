"""Task options: the one model, for JSON bodies, form fields and query strings alike.

Forms and query strings send every value as text, so each field also reads its value from a
string ("true", "2", "auto"); an empty value means the default. The messages name the option,
for a person reading the 400 answer.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_PROMPT = 2000
MAX_HOTWORDS = 1000
MAX_MODEL_NAME = 200
MAX_SPEAKERS = 32
MAX_URL = 2000
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"

_LANGUAGE = re.compile(LANGUAGE_PATTERN)
_BOOL = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _http_url(value: str) -> bool:
    """An absolute http(s) URL in ASCII with a host, no user:password and no spaces or control
    characters (whether the server may send to it is the server's call: jobs/webhooks)."""
    if len(value) > MAX_URL or not value.isascii():
        return False  # a name in another script is sent in its xn-- form
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return False
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or out of range
        return False
    return (
        port_ok
        and parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and (parts.username is None)
    )


def _bad(message: str) -> PydanticCustomError:
    return PydanticCustomError("bad_option", message)


class Options(BaseModel):
    """What a task is asked to do; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str | None = Field(
        default=None,
        pattern=LANGUAGE_PATTERN,
        description="Language code (en, de, pt-BR); null or 'auto' detects it.",
    )
    model: str | None = Field(
        default=None,
        max_length=MAX_MODEL_NAME,
        description="Whisper model from the server's allowlist; null for the server's default.",
    )
    task: Literal["transcribe", "translate"] = Field(
        default="transcribe", description="translate gives English text."
    )
    diarize: bool = Field(default=True, description="Label speakers.")
    num_speakers: int | None = Field(
        default=None, ge=1, le=MAX_SPEAKERS, description="Exact number of speakers."
    )
    min_speakers: int | None = Field(
        default=None, ge=1, le=MAX_SPEAKERS, description="At least this many speakers."
    )
    max_speakers: int | None = Field(
        default=None, ge=1, le=MAX_SPEAKERS, description="At most this many speakers."
    )
    word_timestamps: bool = Field(default=True, description="Word timings in the transcript.")
    match_profiles: bool = Field(
        default=True,
        description="Name the speakers whose voices match a voice profile (when there are any"
        " and the server keeps them).",
    )
    initial_prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT, description="Context for Whisper: names, spellings."
    )
    hotwords: str | None = Field(
        default=None,
        max_length=MAX_HOTWORDS,
        description="Words and names Whisper should expect (faster-whisper's hotwords),"
        " added to the server's --hotwords-file.",
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Sampling temperature from 0 to 1, as OpenAI's API takes it: Whisper decodes"
        " at this temperature and, where a window's text fails its checks, again 0.2 higher up"
        " to 1 (so 0 is faster-whisper's default).",
    )

    callback_url: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description="When the task ends (complete, failed, cancelled), its final snapshot is"
        " POSTed here, signed per the Standard Webhooks specification; only hosts the server's"
        " --webhook-hosts allows.",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    @field_validator("diarize", "word_timestamps", mode="before")
    @classmethod
    def _bool(cls, value: Any, info: ValidationInfo) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL:
            return _BOOL[value.lower()]
        raise _bad(f"Option {info.field_name!r} must be true or false.")

    @field_validator("num_speakers", "min_speakers", "max_speakers", mode="before")
    @classmethod
    def _speakers(cls, value: Any, info: ValidationInfo) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if isinstance(value, bool) or not 1 <= number <= MAX_SPEAKERS:
            raise _bad(
                f"Option {info.field_name!r} must be a whole number from 1 to {MAX_SPEAKERS}."
            )
        return number

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature(cls, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        # NaN fails the range test too; a bool is not a number a person meant.
        if isinstance(value, bool) or not 0.0 <= number <= 1.0:
            raise _bad("Option 'temperature' must be a number from 0 to 1.")
        return number

    @field_validator("language", "model", "task", "initial_prompt", "hotwords", mode="before")
    @classmethod
    def _text(cls, value: object, info: ValidationInfo) -> str | None:
        key = info.field_name
        if not isinstance(value, str):
            raise _bad(f"Option {key!r} must be text.")
        if key == "language":
            value = value.strip().lower()
            if value == "auto":
                return None
            if not _LANGUAGE.match(value):
                raise _bad(f"{value!r} is not a language code such as en or de.")
        elif key == "task" and value not in ("transcribe", "translate"):
            raise _bad("Option 'task' must be transcribe or translate.")
        elif key == "initial_prompt" and len(value) > MAX_PROMPT:
            raise _bad(f"initial_prompt is longer than {MAX_PROMPT} characters.")
        elif key == "hotwords" and len(value) > MAX_HOTWORDS:
            raise _bad(f"hotwords is longer than {MAX_HOTWORDS} characters.")
        elif key == "model" and len(value) > MAX_MODEL_NAME:
            raise _bad("The model name is too long.")
        return value

    @field_validator("callback_url", mode="before")
    @classmethod
    def _url(cls, value: object) -> str:
        if not isinstance(value, str) or not _http_url(value):
            raise _bad("Option 'callback_url' must be an http or https URL.")
        return value

    @model_validator(mode="after")
    def _speaker_bounds(self) -> Options:
        low, high = self.min_speakers, self.max_speakers
        if low is not None and high is not None and low > high:
            raise _bad("min_speakers is larger than max_speakers.")
        return self


# What a task runs with when it asks for nothing; tasks store their options as such a dict.
DEFAULT_OPTIONS: dict[str, Any] = Options().model_dump()
