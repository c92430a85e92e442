"""Plain result types shared by the pipeline stages (no aiohttp, no aiosqlite here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

# stage_progress (0-100 within the stage) and a short human sub-line; a negative stage_progress
# sends only the sub-line (a phase such as "Reading audio") at the current percent.
# The callback raises Cancelled when the task was cancelled, so stages stop at the next step.
ProgressFn = Callable[[float, str], None]


class LiveText(Protocol):
    """Where the transcribing stage hands its text as it is decoded (worker/process.py sends it
    on): each segment of a piece of the audio, then that the piece is done."""

    def segment(self, piece: int, segment: Segment) -> None: ...

    def piece_done(self, piece: int, language: str | None) -> None: ...


@dataclass(frozen=True)
class Resume:
    """Where an earlier run of the transcribing stage stopped: the segments of the pieces it
    finished (all of them stored by the server) and the language it found."""

    segments: list[Segment]
    pieces: int
    language: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resume:
        segments = [Segment(s["index"], s["start"], s["end"], s["text"]) for s in data["segments"]]
        return cls(segments, int(data["pieces"]), data.get("language"))


def clock(seconds: float) -> str:
    """A time in a progress sub-line: 4:10, or 1:02:03 past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class PipelineError(Exception):
    """A failure with one of the documented error codes (see transcriber/errors.py)."""

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def __reduce__(self) -> tuple[type[PipelineError], tuple[str, str, str]]:
        # Crosses the process boundary: keep code and detail when pickled.
        return (PipelineError, (self.code, self.message, self.detail))


class Cancelled(Exception):
    """Raised from a progress callback when the task has been cancelled."""


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float = 0.0
    speaker: str | None = None


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None


@dataclass
class Transcript:
    language: str
    duration: float
    model: str
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        segments = [
            Segment(
                id=s["id"],
                start=s["start"],
                end=s["end"],
                text=s["text"],
                speaker=s.get("speaker"),
                words=[Word(**w) for w in s.get("words", [])],
            )
            for s in data["segments"]
        ]
        return cls(data["language"], data["duration"], data["model"], segments)


@dataclass(frozen=True)
class Turn:
    """One speaker turn from diarization, in seconds."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Voice:
    """One speaker's voice in a recording: the unit-length mean of its embeddings, and the
    seconds of speech (its turns) that mean rests on."""

    embedding: list[float]
    seconds: float
